using System.Globalization;
using System.Text;

namespace InstructTune.Reports;

/// <summary>Renders a <see cref="Report"/> as GitHub Markdown; charts become small tables of their values so the
/// summary carries the same numbers as the HTML page.</summary>
public static class MarkdownReportRenderer
{
    public static string Render(Report report)
    {
        var sb = new StringBuilder($"# {report.Title}\n");
        foreach (var section in report.Sections)
        {
            sb.Append($"\n## {section.Title}\n");
            foreach (var block in section.Blocks)
            {
                sb.Append('\n');
                switch (block)
                {
                    case ParagraphBlock p: sb.Append(p.Text).Append('\n'); break;
                    case TableBlock t: Table(sb, t.Header, t.Rows); break;
                    case LineChart l:
                        sb.Append($"**{l.Title}** ({l.YLabel} by {l.XLabel})\n\n");
                        var xs = l.Series.SelectMany(s => s.Points.Select(p => p.X)).Distinct().Order().ToList();
                        Table(sb, [l.XLabel, .. l.Series.Select(s => s.Name)],
                            xs.Select(x => (IReadOnlyList<string>)[N(x), .. l.Series.Select(s =>
                                s.Points.Where(p => p.X == x).Select(p => N(p.Y)).FirstOrDefault() ?? "")]).ToList());
                        break;
                    case BarChart b:
                        sb.Append($"**{b.Title}** ({b.YLabel})\n\n");
                        Table(sb, ["", .. b.Series.Select(s => s.Name)],
                            b.Categories.Select((c, i) => (IReadOnlyList<string>)[c, .. b.Series.Select(s => BarText(s.Bars[i]))]).ToList());
                        break;
                    case HeatmapChart h:
                        sb.Append($"**{h.Title}**\n\n");
                        Table(sb, ["", .. h.ColumnLabels], h.RowLabels.Select((r, i) => (IReadOnlyList<string>)[r, .. h.Values[i].Select(N)]).ToList());
                        break;
                    default: throw new NotSupportedException($"unknown report block {block.GetType().Name}");
                }
            }
        }
        return sb.ToString();
    }

    private static string BarText(Bar b) =>
        b.Low is double lo && b.High is double hi ? $"{N(b.Value)} [{N(lo)}, {N(hi)}]" : N(b.Value);

    private static string N(double v) => double.IsFinite(v) ? v.ToString("0.####", CultureInfo.InvariantCulture) : "n/a";

    private static void Table(StringBuilder sb, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        sb.Append("| ").Append(string.Join(" | ", header.Select(Cell))).Append(" |\n");
        sb.Append('|').Append(string.Concat(header.Select(_ => " --- |"))).Append('\n');
        foreach (var row in rows) sb.Append("| ").Append(string.Join(" | ", row.Select(Cell))).Append(" |\n");
    }

    private static string Cell(string s) => s.Replace("|", "\\|").Replace("\n", " ");
}
