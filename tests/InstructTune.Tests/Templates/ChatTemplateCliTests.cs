using System.Text.Json;
using InstructTune.Cli;

namespace InstructTune.Tests.Templates;

/// <summary>`itune chat-template` end to end, checked against the jinja2 goldens.</summary>
[Collection("Console")]
public class ChatTemplateCliTests
{
    private static (int Rc, string Out, string Err) Run(string[] args, string? stdin = null)
        => TestConsole.Run(() => CliApp.Run(args), stdin);

    private static List<JsonElement> GoldenFor(string template, bool agp) =>
        Enumerable.Range(0, GoldenCases.RenderCount).Select(GoldenCases.RenderCase)
            .Where(c => c.GetProperty("template").GetString() == template && c.GetProperty("add_generation_prompt").GetBoolean() == agp
                        && !c.TryGetProperty("extra", out _))
            .ToList();

    [Theory]
    [InlineData("llama2", false)]
    [InlineData("qwen2.5", true)]
    public void FileToFileMatchesGoldensInOrder(string tokenizer, bool agp)
    {
        var cases = GoldenFor("tokenizers/" + tokenizer, agp);
        Assert.NotEmpty(cases);
        var dir = Directory.CreateTempSubdirectory("itune-chat-");
        try
        {
            var inPath = Path.Combine(dir.FullName, "in.jsonl");
            var outPath = Path.Combine(dir.FullName, "out.jsonl");
            File.WriteAllLines(inPath, cases.Select(c => JsonSerializer.Serialize(new { messages = c.GetProperty("messages") })));
            string[] args = ["chat-template", "--tokenizer", TestPaths.SharedTestData("tokenizers", tokenizer), "--input", inPath, "--output", outPath];
            if (agp) args = [.. args, "--add-generation-prompt"];
            var (rc, _, err) = Run(args);
            Assert.True(rc == 0, err);
            var lines = File.ReadAllLines(outPath);
            Assert.Equal(cases.Count, lines.Length);
            for (int i = 0; i < cases.Count; i++)
            {
                using var got = JsonDocument.Parse(lines[i]);
                if (cases[i].TryGetProperty("error", out var e))
                    Assert.Equal(e.GetString(), got.RootElement.GetProperty("error").GetString());
                else
                    Assert.Equal(cases[i].GetProperty("text").GetString(), got.RootElement.GetProperty("text").GetString());
            }
            Assert.Single(Directory.GetFiles(dir.FullName, "out.jsonl*")); // no temp file left behind
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void StdinToStdoutWithBadLinesAndSpans()
    {
        var stdin = """
            {"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}]}
            not json

            {"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}
            {"msgs":[]}
            """;
        var (rc, stdout, _) = Run(["chat-template", "--builtin", "chatml", "--spans"], stdin);
        Assert.Equal(0, rc);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n", first.RootElement.GetProperty("text").GetString());
        var spans = first.RootElement.GetProperty("spans").EnumerateArray().ToList();
        var assistant = spans.Single(s => s.GetProperty("message").GetInt32() == 1);
        Assert.Equal("assistant", assistant.GetProperty("role").GetString());
        Assert.Equal(2, assistant.GetProperty("length").GetInt32());
        Assert.Contains("input line 2: invalid JSON", lines[1]);
        Assert.Contains("\"text\"", lines[2]); // chatml does not check alternation
        Assert.Contains("input line 5", lines[3]);
    }

    [Fact]
    public void RaisingTemplateGivesErrorLine()
    {
        var stdin = """{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}""";
        var (rc, stdout, _) = Run(["chat-template", "--tokenizer", TestPaths.SharedTestData("tokenizers", "llama2")], stdin);
        Assert.Equal(0, rc);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", doc.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public void TokenizerWithoutTemplateIsAClearError()
    {
        var (rc, _, err) = Run(["chat-template", "--tokenizer", TestPaths.SharedTestData("tokenizers", "gpt2")], "");
        Assert.Equal(2, rc);
        Assert.Contains("no \"chat_template\" field", err);
    }

    [Fact]
    public void ExplicitTemplateFileUsesTokenizerTokens()
    {
        var stdin = """{"messages":[{"role":"user","content":"Hello!"}]}""";
        var (rc, stdout, err) = Run(["chat-template", "--tokenizer", TestPaths.SharedTestData("tokenizers", "llama2"),
            "--template", TestPaths.SharedTestData("chat_templates", "mistral-nemo.jinja")], stdin);
        Assert.True(rc == 0, err);
        var golden = GoldenFor("chat_templates/mistral-nemo.jinja", false).First(c => c.GetProperty("conversation").GetString() == "single_user");
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(golden.GetProperty("text").GetString(), doc.RootElement.GetProperty("text").GetString());
    }
}
