namespace InstructTune.Templates;

/// <summary>
/// Chat templates for models that ship without one, written as Jinja so provenance works the same way.
/// Each follows the format's canonical definition:
/// - chatml: OpenAI's ChatML (openai/openai-python, chatml.md): "&lt;|im_start|&gt;{role}\n{content}&lt;|im_end|&gt;\n".
/// - llama2: Meta's llama/generation.py chat_completion: "&lt;s&gt;[INST] &lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n{user} [/INST] {answer} &lt;/s&gt;",
///   user and answer stripped (as the Llama-2-chat tokenizer_config template renders it).
/// - llama3: Meta's Llama 3 prompt format (meta-llama/llama3 README, model card): "&lt;|begin_of_text|&gt;" then per
///   message "&lt;|start_header_id|&gt;{role}&lt;|end_header_id|&gt;\n\n{content}&lt;|eot_id|&gt;", content trimmed.
/// - mistral: Mistral-7B-Instruct-v0.1's format (mistral-common "v1" tokenization): "&lt;s&gt;[INST] {user} [/INST]{answer}&lt;/s&gt;",
///   a system message is put before the first user message followed by a blank line.
/// - alpaca: Stanford Alpaca (tatsu-lab/stanford_alpaca, train.py PROMPT_DICT): the preamble, "### Instruction:\n{instruction}\n\n### Response:"
///   and the output followed by EOS; a system message replaces the preamble; later turns repeat the instruction/response pair.
/// - vicuna: FastChat's vicuna_v1.1 conversation (fastchat/conversation.py, ADD_COLON_TWO, sep " ", sep2 "&lt;/s&gt;"):
///   "{system} USER: {user} ASSISTANT: {answer}&lt;/s&gt;USER: …", generation prompt "ASSISTANT:".
/// Roles must alternate user/assistant after an optional system message; otherwise the template raises.
/// </summary>
public static class BuiltinChatTemplates
{
    public const string AlternationError = "Conversation roles must alternate user/assistant/user/assistant/...";

    private const string SystemSplit =
        "{%- if messages and messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}" +
        "{%- else %}{%- set loop_messages = messages %}{%- endif %}" +
        "{%- for message in loop_messages %}{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
        "{{- raise_exception('" + AlternationError + "') }}{%- endif %}{%- endfor %}\n";

    public static readonly IReadOnlyDictionary<string, (string Source, Dictionary<string, object?> Tokens)> All =
        new Dictionary<string, (string, Dictionary<string, object?>)>(StringComparer.OrdinalIgnoreCase)
        {
            ["chatml"] = ("""
                {%- for message in messages %}
                {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}
                {%- endfor %}
                {%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
                """, new() { ["eos_token"] = "<|im_end|>" }),
            ["llama2"] = (SystemSplit + """
                {%- for message in loop_messages %}
                {%- if message['role'] == 'user' %}
                {%- if loop.first and system_message is defined %}
                {{- bos_token + '[INST] ' + ('<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content']) | trim + ' [/INST]' }}
                {%- else %}
                {{- bos_token + '[INST] ' + message['content'] | trim + ' [/INST]' }}
                {%- endif %}
                {%- else %}
                {{- ' ' + message['content'] | trim + ' ' + eos_token }}
                {%- endif %}
                {%- endfor %}
                """, new() { ["bos_token"] = "<s>", ["eos_token"] = "</s>" }),
            ["llama3"] = ("""
                {{- bos_token }}
                {%- for message in messages %}
                {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
                {%- endfor %}
                {%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}
                """, new() { ["bos_token"] = "<|begin_of_text|>", ["eos_token"] = "<|eot_id|>" }),
            ["mistral"] = (SystemSplit + """
                {{- bos_token }}
                {%- for message in loop_messages %}
                {%- if message['role'] == 'user' %}
                {%- if loop.first and system_message is defined %}
                {{- '[INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
                {%- else %}
                {{- '[INST] ' + message['content'] + ' [/INST]' }}
                {%- endif %}
                {%- else %}
                {{- message['content'] + eos_token }}
                {%- endif %}
                {%- endfor %}
                """, new() { ["bos_token"] = "<s>", ["eos_token"] = "</s>" }),
            ["alpaca"] = (SystemSplit + """
                {%- if system_message is defined %}{{- system_message }}
                {%- else %}{{- 'Below is an instruction that describes a task. Write a response that appropriately completes the request.' }}
                {%- endif %}
                {%- for message in loop_messages %}
                {%- if message['role'] == 'user' %}
                {{- '\n\n### Instruction:\n' + message['content'] + '\n\n### Response:' }}
                {%- else %}
                {{- message['content'] + eos_token }}
                {%- endif %}
                {%- endfor %}
                """, new() { ["eos_token"] = "</s>" }),
            ["vicuna"] = (SystemSplit + """
                {%- if system_message is defined %}{{- system_message + ' ' }}
                {%- else %}{{- "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. " }}
                {%- endif %}
                {%- for message in loop_messages %}
                {%- if message['role'] == 'user' %}
                {{- 'USER: ' + message['content'] + ' ' }}
                {%- else %}
                {{- 'ASSISTANT: ' + message['content'] + eos_token }}
                {%- endif %}
                {%- endfor %}
                {%- if add_generation_prompt %}{{- 'ASSISTANT:' }}{%- endif %}
                """, new() { ["eos_token"] = "</s>" }),
        };

    /// <summary>A built-in template by name; <paramref name="specialTokens"/> (e.g. from the tokenizer) override the defaults.</summary>
    public static JinjaChatTemplate Get(string name, IReadOnlyDictionary<string, object?>? specialTokens = null)
    {
        if (!All.TryGetValue(name, out var t))
            throw new ChatTemplateException($"unknown built-in chat template '{name}' (known: {string.Join(", ", All.Keys)})");
        var tokens = new Dictionary<string, object?>(t.Tokens);
        if (specialTokens is not null) foreach (var (k, v) in specialTokens) if (v is not null) tokens[k] = v;
        return new JinjaChatTemplate(t.Source, tokens);
    }
}
