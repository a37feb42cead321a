namespace InstructTune.Reports;

/// <summary>
/// A document model for results pages: a title, then sections holding paragraphs, tables, line charts and bar
/// charts. Built in code, rendered to a self-contained offline HTML page (inline CSS and SVG, no script, no
/// external resources) by <see cref="HtmlReportRenderer"/> and to Markdown by <see cref="MarkdownReportRenderer"/>.
/// Evaluation and the trainer's quickstart report both use it.
/// </summary>
/// <example>
/// var report = new Report("Eval");
/// report.Section("Scores").Table(["metric", "value"], [["bleu", "31.2"]])
///       .Line(new LineChart("Loss", "step", "loss", [new Series("train", [(0, 2.3), (10, 1.9)])]));
/// report.WriteHtml("out/report.html");
/// </example>
public sealed class Report(string title)
{
    public string Title { get; } = title;
    public List<ReportSection> Sections { get; } = [];

    public ReportSection Section(string title)
    {
        var section = new ReportSection(title);
        Sections.Add(section);
        return section;
    }

    public void WriteHtml(string path) => AtomicFile.WriteAllText(path, HtmlReportRenderer.Render(this));
    public void WriteMarkdown(string path) => AtomicFile.WriteAllText(path, MarkdownReportRenderer.Render(this));
}

/// <summary>One section: blocks in the order added; every adder returns the section so calls chain.</summary>
public sealed class ReportSection(string title)
{
    public string Title { get; } = title;
    public List<ReportBlock> Blocks { get; } = [];

    public ReportSection Paragraph(string text) { Blocks.Add(new ParagraphBlock(text)); return this; }

    public ReportSection Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var list = rows.ToList();
        foreach (var (row, i) in list.Select((r, i) => (r, i)))
            if (row.Count != header.Count)
                throw new ArgumentException($"table row {i} has {row.Count} cells, header has {header.Count}");
        Blocks.Add(new TableBlock(header, list));
        return this;
    }

    public ReportSection Line(LineChart chart) { Blocks.Add(chart); return this; }
    public ReportSection Bar(BarChart chart) { Blocks.Add(chart); return this; }
    public ReportSection Heatmap(HeatmapChart chart) { Blocks.Add(chart); return this; }
}

public abstract record ReportBlock;
public sealed record ParagraphBlock(string Text) : ReportBlock;
public sealed record TableBlock(IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows) : ReportBlock;

/// <summary>A named series of (x, y) points; NaN y values are gaps.</summary>
public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>A line chart: several series over a shared numeric x axis.</summary>
public sealed record LineChart(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series) : ReportBlock;

/// <summary>One bar group member: a value with an optional [Low, High] whisker (spread, min–max, ± std).</summary>
public sealed record Bar(double Value, double? Low = null, double? High = null);

/// <summary>A grouped bar chart: one group per category, one bar per series in each group.</summary>
public sealed record BarChart(string Title, string YLabel, IReadOnlyList<string> Categories,
    IReadOnlyList<(string Name, IReadOnlyList<Bar> Bars)> Series) : ReportBlock
{
    public BarChart Validate()
    {
        foreach (var (name, bars) in Series)
            if (bars.Count != Categories.Count)
                throw new ArgumentException($"bar series '{name}' has {bars.Count} values for {Categories.Count} categories");
        return this;
    }
}

/// <summary>A matrix of values as coloured cells (low = light, high = dark), each cell labelled; NaN cells are blank.</summary>
public sealed record HeatmapChart(string Title, IReadOnlyList<string> RowLabels, IReadOnlyList<string> ColumnLabels,
    IReadOnlyList<IReadOnlyList<double>> Values) : ReportBlock;
