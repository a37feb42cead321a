using System.Diagnostics;
using InstructTune.Templates;
using InstructTune.Templates.Jinja;

namespace InstructTune.Tests.Templates;

/// <summary>Runaway templates stop with clear errors, quickly; syntax errors name line and column.</summary>
public class LimitsAndErrorsTests
{
    private static ChatTemplateException RenderFails(string source, RenderLimits? limits = null)
    {
        var t = new JinjaChatTemplate(source, limits: limits);
        var sw = Stopwatch.StartNew();
        var ex = Assert.Throws<ChatTemplateException>(() => t.Render([new ChatMessage("user", "x")]));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        return ex;
    }

    [Fact]
    public void HugeRangeIsRefused() =>
        Assert.Contains("loop iteration limit", RenderFails("{% for i in range(1000000000000) %}x{% endfor %}").Message);

    [Fact]
    public void NestedLoopsHitTheIterationLimit()
    {
        var limits = new RenderLimits { MaxLoopIterations = 20_000 };
        var ex = RenderFails("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}", limits);
        Assert.Contains("loop iterations exceed the limit of 20000", ex.Message);
    }

    [Fact]
    public void DoublingStringIsStoppedBySizeLimit()
    {
        var ex = RenderFails("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}");
        Assert.Contains("size limit", ex.Message);
    }

    [Fact]
    public void StringRepeatIsStoppedBeforeAllocating() =>
        Assert.Contains("size limit", RenderFails("{{ 'x' * 100000000000 }}").Message);

    [Fact]
    public void OutputLimitStopsGrowth()
    {
        var limits = new RenderLimits { MaxOutputLength = 1000 };
        var ex = RenderFails("{% for i in range(10000) %}0123456789{% endfor %}", limits);
        Assert.Contains("output exceeds the limit of 1000 characters", ex.Message);
    }

    [Theory]
    [InlineData("{{ ns.l }}")]
    [InlineData("{{ ns.l | tojson }}")]
    [InlineData("{{ ns.l | string | length }}")]
    public void ExponentiallySharedValuesDoNotPrintForever(string print)
    {
        var ex = RenderFails("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}" + print,
            new RenderLimits { MaxOutputLength = 100_000 });
        Assert.Contains("size limit", ex.Message);
    }

    [Fact]
    public void RunawayRecursionIsStopped()
    {
        var ex = RenderFails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
        Assert.Contains("call depth exceeds the limit", ex.Message);
    }

    [Fact]
    public void RuntimeErrorNamesTemplateLine()
    {
        var ex = RenderFails("line1\n{{ 1 + 1 }}\n{{ missing.attr }}");
        Assert.Contains("'missing' is undefined", ex.Message);
        Assert.Contains("line 3", ex.Message);
    }

    [Theory]
    [InlineData("hello\n  {% if x %}\n", 2, 6)]
    [InlineData("a\nb {{ 1 + }}", 2, 10)]
    [InlineData("{% for %}", 1, 8)]
    [InlineData("x\n{{ 'unterminated }}", 2, 4)]
    [InlineData("{% frobnicate %}", 1, 4)]
    [InlineData("{{ x | nofilter }}", 1, 8)]
    [InlineData("ab\n\n  {# never closed", 3, 3)]
    public void SyntaxErrorsNameLineAndColumn(string source, int line, int column)
    {
        var ex = Assert.Throws<ChatTemplateException>(() => new JinjaChatTemplate(source));
        Assert.Contains($"line {line}, column {column}", ex.Message);
    }

    [Fact]
    public void BreakOutsideLoopIsASyntaxError() =>
        Assert.Throws<ChatTemplateException>(() => new JinjaChatTemplate("{% break %}"));

    [Fact]
    public void IncludeIsRefusedInTheSandbox() =>
        Assert.Contains("not supported", Assert.Throws<ChatTemplateException>(() => new JinjaChatTemplate("{% include 'x' %}")).Message);
}
