using System.Xml.Linq;
using InstructTune.Reports;

namespace InstructTune.Tests.Reports;

public class ReportRenderingTests
{
    public static Report Sample()
    {
        var report = new Report("Sample <report> & charts");
        report.Section("Tables").Paragraph("Numbers & text with <angle brackets>.")
            .Table(["metric", "value"], [["bleu", "31.20"], ["rouge|L", "0.41"]]);
        report.Section("Charts")
            .Line(new LineChart("Shot curve", "k", "accuracy",
                [new Series("seen", [(0, 0.4), (1, 0.5), (2, 0.55), (4, 0.6)]), new Series("unseen", [(0, 0.3), (1, double.NaN), (2, 0.35), (4, 0.4)])]))
            .Bar(new BarChart("Per level", "score", ["simple", "conditional", "multi-step"],
                [("f1", [new Bar(0.8, 0.7, 0.9), new Bar(0.6), new Bar(0.4, 0.2, 0.5)]), ("em", [new Bar(0.5), new Bar(0.3), new Bar(-0.1)])]));
        return report;
    }

    [Fact]
    public void HtmlIsSelfContainedWellFormedAndEscaped()
    {
        var html = HtmlReportRenderer.Render(Sample());
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        // The only URL is the SVG namespace; nothing is fetched.
        Assert.DoesNotContain("src=", html);
        Assert.DoesNotContain("href=", html);
        Assert.Equal(html.Split("http").Length - 1, html.Split("http://www.w3.org/2000/svg").Length - 1);
        Assert.Contains("Sample &lt;report&gt; &amp; charts", html);
        // Every SVG parses as XML, with one polyline segment per run of finite points and 6 bars.
        var svgs = html.Split("<svg").Skip(1).Select(s => XElement.Parse("<svg" + s[..(s.IndexOf("</svg>") + 6)])).ToList();
        Assert.Equal(2, svgs.Count);
        XNamespace ns = "http://www.w3.org/2000/svg";
        // "seen" is one polyline; "unseen" is split by its NaN: a lone point (no line) and one 2-point line.
        Assert.Equal(2, svgs[0].Descendants(ns + "polyline").Count());
        Assert.Equal(7, svgs[0].Descendants(ns + "circle").Count());
        Assert.Equal(6, svgs[1].Descendants(ns + "rect").Count(r => r.Element(ns + "title") != null));
        Assert.Equal(2, svgs[1].Descendants(ns + "path").Count(p => (string?)p.Attribute("stroke") == "#222"));
    }

    [Fact]
    public void MarkdownCarriesTheChartValues()
    {
        var md = MarkdownReportRenderer.Render(Sample());
        Assert.Contains("| rouge\\|L | 0.41 |", md);
        Assert.Contains("| 1 | 0.5 | n/a |", md);        // the NaN point of "unseen" at k=1
        Assert.Contains("| simple | 0.8 [0.7, 0.9] | 0.5 |", md);
    }

    [Fact]
    public void BadShapesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new Report("x").Section("s").Table(["a", "b"], [["1"]]));
        Assert.Throws<ArgumentException>(() => new Report("x").Section("s")
            .Bar(new BarChart("b", "y", ["a", "b"], [("s", [new Bar(1)])]).Validate()));
    }

    [Theory]
    [InlineData(0, 1, new[] { 0, 0.2, 0.4, 0.6, 0.8, 1 })]
    [InlineData(0, 100, new[] { 0.0, 20, 40, 60, 80, 100 })]
    [InlineData(-0.1, 0.8, new[] { -0.2, 0, 0.2, 0.4, 0.6, 0.8 })]
    public void NiceTicksAreRound(double lo, double hi, double[] expected) =>
        Assert.Equal(expected, SvgCharts.NiceTicks(lo, hi));

    [Fact]
    public void WriteIsAtomicAndLeavesNoTempFiles()
    {
        var dir = Directory.CreateTempSubdirectory("itune-report-");
        try
        {
            var path = Path.Combine(dir.FullName, "r.html");
            File.WriteAllText(path, "old");
            Sample().WriteHtml(path);
            Assert.StartsWith("<!DOCTYPE html>", File.ReadAllText(path));
            Assert.Single(Directory.GetFiles(dir.FullName));
        }
        finally { dir.Delete(true); }
    }
}

public class ReportChromiumTests
{
    [ChromiumFact]
    public void ReportOpensInHeadlessChromiumWithoutConsoleErrors()
    {
        var dir = Directory.CreateTempSubdirectory("itune-report-");
        try
        {
            var html = Path.Combine(dir.FullName, "report.html");
            var png = Path.Combine(dir.FullName, "report.png");
            ReportRenderingTests.Sample().WriteHtml(html);
            var r = HeadlessChromium.Screenshot(html, png, TimeSpan.FromSeconds(90));
            Assert.True(File.Exists(png), "no screenshot; chromium stderr:\n" + r.Stderr);
            Assert.Equal((1200, 1600), HeadlessChromium.PngSize(png));
            Assert.True(new FileInfo(png).Length > 20_000, "screenshot suspiciously small (blank page?)");
            Assert.True(r.ConsoleLines.Count == 0, string.Join('\n', r.ConsoleLines));
        }
        finally { dir.Delete(true); }
    }

    // The console check must be able to fail: a page with a script error is caught.
    [ChromiumFact]
    public void ConsoleErrorsAreDetected()
    {
        var dir = Directory.CreateTempSubdirectory("itune-report-");
        try
        {
            var html = Path.Combine(dir.FullName, "bad.html");
            File.WriteAllText(html, "<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>");
            var r = HeadlessChromium.Screenshot(html, Path.Combine(dir.FullName, "bad.png"), TimeSpan.FromSeconds(90));
            Assert.Contains(r.ConsoleLines, l => l.Contains("Uncaught ReferenceError"));
        }
        finally { dir.Delete(true); }
    }
}
