using InstructTune.Templates;

namespace InstructTune.Tests.Templates;

/// <summary>Which characters the rendered spans attribute to which message (hand-worked expectations).</summary>
public class ProvenanceTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new("system", "  Be brief. "),
        new("user", "Hi\n"),
        new("assistant", " Hello there! "),
    ];

    private static string SpanText(RenderedChat chat, RenderedSpan s) => chat.Text.Substring(s.Start, s.Length);

    [Fact]
    public void Llama3TrimmedContentIsAttributedAndHeadersAreTemplateText()
    {
        var template = ChatTemplateLoader.FromTokenizer(TestPaths.SharedTestData("tokenizers", "llama3"));
        var chat = template.Render(Conversation, addGenerationPrompt: true);
        var owned = chat.Spans.Where(s => s.MessageIndex >= 0).Select(s => (s.MessageIndex, s.Role, SpanText(chat, s))).ToList();
        Assert.Equal([(0, "system", "Be brief."), (1, "user", "Hi"), (2, "assistant", "Hello there!")], owned);
        Assert.All(chat.Spans.Where(s => s.MessageIndex < 0), s => Assert.DoesNotContain("Hello", SpanText(chat, s)));
        Assert.EndsWith("<|start_header_id|>assistant<|end_header_id|>\n\n", chat.Text);
    }

    [Fact]
    public void Llama2SystemMergedIntoFirstUserTurnKeepsBothOwners()
    {
        var template = ChatTemplateLoader.FromTokenizer(TestPaths.SharedTestData("tokenizers", "llama2"));
        var chat = template.Render(Conversation);
        Assert.Equal("<s>[INST] <<SYS>>\n  Be brief. \n<</SYS>>\n\nHi [/INST] Hello there! </s>", chat.Text);
        var owned = chat.Spans.Where(s => s.MessageIndex >= 0).Select(s => (s.MessageIndex, SpanText(chat, s))).ToList();
        Assert.Equal([(0, "  Be brief. "), (1, "Hi"), (2, "Hello there!")], owned);
    }

    [Fact]
    public void SpansCoverTextInOrder()
    {
        var chat = BuiltinChatTemplates.Get("chatml").Render(Conversation, true);
        Assert.Equal(0, chat.Spans[0].Start);
        for (int i = 1; i < chat.Spans.Count; i++)
            Assert.Equal(chat.Spans[i - 1].Start + chat.Spans[i - 1].Length, chat.Spans[i].Start);
        Assert.Equal(chat.Text.Length, chat.Spans[^1].Start + chat.Spans[^1].Length);
        // Adjacent template pieces are merged: span owners alternate between template text and messages.
        for (int i = 1; i < chat.Spans.Count; i++)
            Assert.NotEqual(chat.Spans[i - 1].MessageIndex, chat.Spans[i].MessageIndex);
    }

    [Theory]
    [InlineData("{{ messages[0].content | upper }}", "ABC", 0)]
    [InlineData("{{ messages[0].content[1:] }}", "bc", 0)]
    [InlineData("{{ messages[0].content.split('b')[1] }}", "c", 0)]
    [InlineData("{{ messages[0].content ~ '!' }}", "abc!", 0)]
    [InlineData("{% for c in messages[0].content %}{{ c }}-{% endfor %}", "a-b-c-", 0)]
    [InlineData("{% set x %}[{{ messages[0].content }}]{% endset %}{{ x }}", "[abc]", 0)]
    [InlineData("{% macro m(t) %}<{{ t }}>{% endmacro %}{{ m(messages[0].content) }}", "<abc>", 0)]
    public void ProvenanceSurvivesStringMoves(string source, string expected, int owner)
    {
        var chat = new JinjaChatTemplate(source).Render([new ChatMessage("user", "abc")]);
        Assert.Equal(expected, chat.Text);
        var ownedChars = chat.Spans.Where(s => s.MessageIndex == owner).Sum(s => s.Length);
        Assert.Equal(expected.Count(char.IsLetter), ownedChars);
    }

    [Theory]
    [InlineData("{{ messages[0].content | tojson }}")]
    [InlineData("{{ messages[0].content.replace('a', 'A') }}")]
    [InlineData("{{ messages[0].role }}")]
    [InlineData("{{ messages[0] }}")]
    public void ComputedTextIsTemplateText(string source)
    {
        var chat = new JinjaChatTemplate(source).Render([new ChatMessage("user", "abc")]);
        Assert.All(chat.Spans, s => Assert.Equal(-1, s.MessageIndex));
    }
}
