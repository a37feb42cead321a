using InstructTune.Templates;

namespace InstructTune.Tests.Templates;

/// <summary>Finding a model's template and special tokens; bad configs name file and field.</summary>
public sealed class LoaderTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("itune-tpl-");
    public void Dispose() => _dir.Delete(true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static readonly ChatMessage[] Hi = [new("user", "hi")];

    [Fact]
    public void NamedTemplateListPicksDefaultAndAddedTokenObjectsGiveContent()
    {
        Write("tokenizer_config.json", """
            {"bos_token": {"content": "<B>", "lstrip": false}, "eos_token": "<E>", "unk_token": null,
             "chat_template": [{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}{{ unk_token is defined }}"}]}
            """);
        Assert.Equal("<B>hi<E>False", ChatTemplateLoader.FromTokenizer(_dir.FullName).Render(Hi).Text);
        Assert.Equal("TOOLS", ChatTemplateLoader.FromTokenizer(_dir.FullName, templateName: "tool_use").Render(Hi).Text);
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplateLoader.FromTokenizer(_dir.FullName, templateName: "rag"));
        Assert.Contains("tool_use, default", ex.Message);
    }

    [Fact]
    public void ChatTemplateJinjaFileWinsAndSpecialTokensMapFillsGaps()
    {
        Write("tokenizer_config.json", """{"chat_template": "config", "eos_token": "<E>"}""");
        Write("special_tokens_map.json", """{"bos_token": {"content": "<MAPB>"}, "eos_token": "<MAPE>"}""");
        Write("chat_template.jinja", "{{ bos_token }}|{{ eos_token }}\n");
        Assert.Equal("<MAPB>|<E>", ChatTemplateLoader.FromTokenizer(_dir.FullName).Render(Hi).Text);
    }

    [Fact]
    public void MissingTemplateFallsBackToBuiltinWithTokenizerTokens()
    {
        Write("tokenizer_config.json", """{"bos_token": "<B>", "eos_token": "<E>"}""");
        var chat = ChatTemplateLoader.FromTokenizerOrBuiltin(_dir.FullName, "llama2").Render([new("user", "q"), new("assistant", "a")]);
        Assert.Equal("<B>[INST] q [/INST] a <E>", chat.Text);
        Assert.Equal([(20, 21, 1)], chat.RangesOfRole("assistant"));
    }

    [Theory]
    [InlineData("""{"chat_template": 5}""", "field \"chat_template\"")]
    [InlineData("""{"chat_template": [{"name": "default"}]}""", "\"name\" and \"template\"")]
    [InlineData("""{"chat_template": "x", "eos_token": 7}""", "field \"eos_token\"")]
    [InlineData("{\"chat_template\": \n \"x\",, }", "invalid JSON at line 2")]
    [InlineData("""{"chat_template": "{% if %}"}""", "line 1, column")]
    public void BadConfigsNameFileAndField(string json, string expected)
    {
        var path = Write("tokenizer_config.json", json);
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplateLoader.FromTokenizer(_dir.FullName));
        Assert.Contains(expected, ex.Message);
        if (!expected.StartsWith("line")) Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void MissingFilesAreNamed()
    {
        Assert.Contains("no tokenizer_config.json", Assert.Throws<ChatTemplateException>(() => ChatTemplateLoader.FromTokenizer(_dir.FullName)).Message);
        var missing = Path.Combine(_dir.FullName, "nope.jinja");
        Assert.Contains(missing, Assert.Throws<ChatTemplateException>(() => ChatTemplateLoader.FromFile(missing)).Message);
    }
}
