using System.Text.Json;

namespace InstructTune.Tests.Hostile;

/// <summary>
/// Hostile chat templates through <c>itune chat-template</c>: a template that cannot be parsed is a clear error
/// (exit 2); a render that breaks a limit is that conversation's {"error": …} line. Either way within the time and
/// memory limits, with the limit checked before anything large is allocated.
/// </summary>
[Collection("Probes")]
public class TemplateProbeTests
{
    private static ProbeResult Render(string template)
    {
        var dir = HostileWorkspace.NewFolder("jinja");
        File.WriteAllText(Path.Combine(dir, "t.jinja"), template);
        File.WriteAllText(Path.Combine(dir, "m.jsonl"), "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n");
        return Probe.Run(["chat-template", "--template", Path.Combine(dir, "t.jinja"), "--input", Path.Combine(dir, "m.jsonl")]);
    }

    private static void AssertRenderError(ProbeResult r, string expected)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        Probe.AssertBounded(r);
        using var doc = JsonDocument.Parse(r.Stdout.Trim());
        Assert.True(doc.RootElement.TryGetProperty("error", out var error), r.Stdout);
        Assert.Contains(expected, error.GetString());
    }

    [Fact]
    public void IntegerLiteralAbove2Pow63IsASyntaxError() =>
        Probe.AssertClearError(Render("{{ 99999999999999999999 }}"), "line 1", "does not fit in 64 bits");

    [Theory]
    [InlineData("{{ 9**9**9 }}")]
    [InlineData("{{ 9223372036854775807 + 1 }}")]
    [InlineData("{{ 4294967296 * 4294967296 }}")]
    public void IntegerOverflowIsAnErrorNotAWrongNumber(string template) => AssertRenderError(Render(template), "integer overflow");

    [Fact]
    public void PowerThatFitsIsExact()
    {
        var r = Render("{{ 2**62 }} {{ 3**39 }}");
        Assert.Contains("4611686018427387904 4052555153018976267", r.Stdout);
    }

    [Fact]
    public void HundredThousandChainedFiltersAreRefused() =>
        Probe.AssertClearError(Render("{{ 'a'" + string.Concat(Enumerable.Repeat("|lower", 100_000)) + " }}"), "line 1", "nested too deeply");

    [Fact]
    public void HundredThousandChainedOperatorsStopBeforeTheStack() =>
        AssertRenderError(Render("{{ 1" + string.Concat(Enumerable.Repeat("+1", 100_000)) + " }}"), "nested too deeply");

    [Fact]
    public void MacroCallingItselfTwicePerLevelIsBounded() =>
        AssertRenderError(Render("{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(30) }}"),
            "calls exceed the limit");

    [Theory]
    [InlineData("{{ 'a'|center(1000000000) }}", "center")]
    [InlineData("{{ 'a'.center(1000000000) }}", "center")]
    [InlineData("{{ 'a'.ljust(1000000000) }}", "ljust")]
    [InlineData("{{ 'a'.ljust(2147483647) }}", "ljust")]
    [InlineData("{{ 'a'.rjust(2147483647) }}", "rjust")]
    [InlineData("{{ 'a'.zfill(1000000000) }}", "zfill")]
    [InlineData("{{ 'a\nb'|indent(1000000000) }}", "indent")]
    [InlineData("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s.replace('a', 'aa') %}{% endfor %}{{ ns.s }}", "replace")]
    [InlineData("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s|replace('a', 'aa') %}{% endfor %}{{ ns.s }}", "replace")]
    public void HugeSizesAreRefusedBeforeAllocating(string template, string what)
    {
        var r = Render(template);
        AssertRenderError(r, what + ": a result of");
        Assert.True(r.PeakBytes < 200L << 20, r.ToString());   // the 16 M-character limit is never even reached
    }
}
