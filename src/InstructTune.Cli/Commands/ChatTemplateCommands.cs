using System.CommandLine;
using System.Text;
using InstructTune.Templates;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune chat-template</c>: renders conversations (JSON lines {"messages":[…]}) with a tokenizer's chat template,
/// an explicit .jinja file or a built-in format; writes {"text":…} or {"error":…} per line, in input order.
/// </summary>
public static class ChatTemplateCommands
{
    public static Command Create()
    {
        var command = new Command("chat-template", "Render chat conversations with a model's chat template (JSON lines in, JSON lines out)");
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer folder (tokenizer_config.json gives the template and bos/eos tokens)" };
        var template = new Option<string>("--template") { Description = "A .jinja file to use instead of the tokenizer's chat_template" };
        var builtin = new Option<string>("--builtin") { Description = "A built-in template: alpaca, chatml, llama2, llama3, mistral, vicuna" };
        var name = new Option<string>("--template-name") { Description = "Which named template when chat_template is a list", DefaultValueFactory = _ => "default" };
        var agp = new Option<bool>("--add-generation-prompt") { Description = "Append the prompt that starts the assistant's reply" };
        var spans = new Option<bool>("--spans") { Description = "Also write the provenance spans (which message each part of the text came from)" };
        var input = new Option<string>("--input") { Description = "Input JSON lines (default: standard input)" };
        var output = new Option<string>("--output") { Description = "Output JSON lines (default: standard output); written atomically" };
        foreach (var o in new Option[] { tokenizer, template, builtin, name, agp, spans, input, output }) command.Options.Add(o);

        command.SetAction(parse =>
        {
            {
                var chatTemplate = Load(parse.GetValue(tokenizer), parse.GetValue(template), parse.GetValue(builtin), parse.GetValue(name)!);
                var inPath = parse.GetValue(input);
                using var reader = inPath is null ? Console.In : new StreamReader(inPath, Encoding.UTF8);
                var outPath = parse.GetValue(output);
                if (outPath is null)
                {
                    ChatTemplateJsonl.Process(chatTemplate, reader, Console.Out, parse.GetValue(agp), parse.GetValue(spans));
                    Console.Out.Flush();
                    return 0;
                }
                InstructTune.Common.OutputFile.Write(outPath, fs =>
                {
                    using var writer = new StreamWriter(fs, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
                    ChatTemplateJsonl.Process(chatTemplate, reader, writer, parse.GetValue(agp), parse.GetValue(spans));
                });
                return 0;
            }
        });
        return command;
    }

    private static JinjaChatTemplate Load(string? tokenizer, string? template, string? builtin, string name)
    {
        if (builtin is not null)
            return BuiltinChatTemplates.Get(builtin, tokenizer is null ? null : ChatTemplateLoader.ReadSpecialTokens(Dir(tokenizer)));
        if (tokenizer is null)
        {
            if (template is null) throw new ChatTemplateException("give --tokenizer PATH, --template FILE.jinja or --builtin NAME");
            return ChatTemplateLoader.FromFile(template);
        }
        return ChatTemplateLoader.FromTokenizer(tokenizer, template, name);
    }

    private static string Dir(string path) => Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
}
