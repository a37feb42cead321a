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
        RenderedChat? rendered = null;
        string actual;
        try
        {
            rendered = template.Render(messages, agp, GoldenCases.Extra(c));
            actual = "text: " + rendered.Text;
        }
        catch (ChatTemplateException e) { actual = "error: " + e.Message; }
        string expected = c.TryGetProperty("error", out var error) ? "error: " + error.GetString() : "text: " + c.GetProperty("text").GetString();
        string source = c.TryGetProperty("source", out var src) ? src.GetString()! : "";
        string Show(string s) => System.Text.Json.JsonSerializer.Serialize(s);
        string why = $"{id}\nsource:   {Show(source)}\nexpected: {Show(expected)}\nactual:   {Show(actual)}";
        if (expected.StartsWith("error: "))
        {
            // Both must fail; a raise_exception message must come through unchanged.
            Assert.True(actual.StartsWith("error: "), why);
            if (kind.GetString() == "raise") Assert.True(expected == actual, why);
            return;
        }
        Assert.True(expected == actual, why);
        ProvenanceChecks.AssertSound(rendered!, messages);
    }
}
