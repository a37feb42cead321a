using InstructTune.Templates;

namespace InstructTune.Tests.Templates;

/// <summary>
/// Built-in templates against the canonical formats as tools/golden/templates_render.py builds them in plain
/// Python from each format's published definition (chatml.md, llama generation.py, FastChat, Stanford Alpaca …).
/// </summary>
public class BuiltinTemplateTests
{
    public static IEnumerable<object[]> Indices() => Enumerable.Range(0, GoldenCases.BuiltinCount).Select(i => new object[] { i });

    [Theory]
    [MemberData(nameof(Indices))]
    public void RendersCanonicalFormat(int index)
    {
        var c = GoldenCases.BuiltinCase(index);
        var template = BuiltinChatTemplates.Get(c.GetProperty("template").GetString()!);
        var messages = GoldenCases.Messages(c);
        bool agp = c.GetProperty("add_generation_prompt").GetBoolean();
        if (c.TryGetProperty("error", out var error))
        {
            var ex = Assert.Throws<ChatTemplateException>(() => template.Render(messages, agp));
            Assert.Equal(error.GetString(), ex.Message);
            return;
        }
        var chat = template.Render(messages, agp);
        Assert.Equal(c.GetProperty("text").GetString(), chat.Text);
        ProvenanceChecks.AssertSound(chat, messages);
    }

    [Fact]
    public void EveryFormatIsCovered()
    {
        var names = Enumerable.Range(0, GoldenCases.BuiltinCount).Select(i => GoldenCases.BuiltinCase(i).GetProperty("template").GetString()).ToHashSet();
        Assert.Equal(new HashSet<string?> { "alpaca", "chatml", "llama2", "llama3", "mistral", "vicuna" }, names);
        Assert.Equal(names.Count, BuiltinChatTemplates.All.Count);
    }

    [Fact]
    public void TokenizerSpecialTokensOverrideDefaults()
    {
        var t = BuiltinChatTemplates.Get("llama2", new Dictionary<string, object?> { ["bos_token"] = "<BOS>", ["eos_token"] = "<EOS>" });
        var chat = t.Render([new ChatMessage("user", "hi"), new ChatMessage("assistant", "yo")]);
        Assert.Equal("<BOS>[INST] hi [/INST] yo <EOS>", chat.Text);
    }

    [Fact]
    public void UnknownNameListsKnownOnes()
    {
        var ex = Assert.Throws<ChatTemplateException>(() => BuiltinChatTemplates.Get("gpt9"));
        Assert.Contains("chatml", ex.Message);
    }
}
