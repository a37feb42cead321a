using InstructTune.Templates;

namespace InstructTune.Tests.Templates;

/// <summary>
/// Every shared chat template (and the feature templates) renders exactly as jinja2 in transformers'
/// environment did when tools/golden/templates_render.py ran; templates that raise report an error.
/// </summary>
public class JinjaGoldenTests
{
    public static IEnumerable<object[]> RenderIndices() => Enumerable.Range(0, GoldenCases.RenderCount).Select(i => new object[] { i });

    [Theory]
    [MemberData(nameof(RenderIndices))]
    public void RendersLikeJinja2(int index)
    {
        var c = GoldenCases.RenderCase(index);
        string id = GoldenCases.Id(c);
        bool expectSyntaxError = c.TryGetProperty("errorKind", out var kind) && kind.GetString() == "syntax";
        JinjaChatTemplate template;
        try { template = GoldenCases.Template(c); }
        catch (ChatTemplateException e) when (expectSyntaxError)
        {
            Assert.Matches(@"line \d+, column \d+", e.Message);
            return;
        }
        Assert.False(expectSyntaxError, $"{id}: expected a syntax error");

        var messages = GoldenCases.Messages(c);
        bool agp = c.GetProperty("add_generation_prompt").GetBoolean();
        if (c.TryGetProperty("error", out var error))
        {
            var ex = Assert.Throws<ChatTemplateException>(() => template.Render(messages, agp, GoldenCases.Extra(c)));
            if (kind.GetString() == "raise") Assert.Equal(error.GetString(), ex.Message);
            return;
        }
        var rendered = template.Render(messages, agp, GoldenCases.Extra(c));
        var expected = c.GetProperty("text").GetString();
        Assert.True(expected == rendered.Text,
            $"{id}\nexpected: {System.Text.Json.JsonSerializer.Serialize(expected)}\nactual:   {System.Text.Json.JsonSerializer.Serialize(rendered.Text)}");
        ProvenanceChecks.AssertSound(rendered, messages);
    }
}
