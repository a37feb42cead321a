using System.Text.Json.Nodes;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.ModelBackends;

namespace InstructTune.Tests.Evaluation.ModelBackends;

/// <summary>--template: the tokenizer's chat template (with the generation prompt) and the auto choice.</summary>
public class PromptFormatterTests
{
    // A Zephyr-style template: bos, then "<|role|>\ncontent</s>\n" per message, then "<|assistant|>\n" when generating.
    private const string Template =
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
        + "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

    private static string WithChatTemplate()
    {
        var dir = Directory.CreateTempSubdirectory("evalmodel-chat").FullName;
        foreach (var f in Directory.GetFiles(TinyEvalModel.Path)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = Template;
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        return dir;
    }

    [Fact]
    public void AutoUsesTheTokenizersChatTemplateWithTheGenerationPrompt()
    {
        var dir = WithChatTemplate();
        foreach (var name in new[] { "auto", "chat" })
        {
            var f = PromptFormatter.Create(name, dir);
            Assert.Equal("chat", f.Name);
            Assert.Equal("<s><|user|>\nName a colour.</s>\n<|assistant|>\n", f.Format("Name a colour."));
            // The template writes BOS itself, so the tokenizer must not add another (apply_chat_template's convention).
            Assert.False(f.AddSpecialTokens);
        }
    }

    [Fact]
    public void AutoWithoutAChatTemplateIsRawAndChatIsAnError()
    {
        var f = PromptFormatter.Create(null, TinyEvalModel.Path);
        Assert.Equal("raw", f.Name);
        Assert.Equal("Name a colour.", f.Format("Name a colour."));
        Assert.True(f.AddSpecialTokens);
        var ex = Assert.Throws<EvalInputException>(() => PromptFormatter.Create("chat", TinyEvalModel.Path));
        Assert.Contains("chat_template", ex.Message);
    }

    [Fact]
    public void FormatStringTemplateIsCutBeforeTheOutput() =>
        Assert.Equal("Q: Hi\nA: ", PromptFormatter.Create("Q: {instruction}\nA: {output}", TinyEvalModel.Path).Format("Hi"));
}
