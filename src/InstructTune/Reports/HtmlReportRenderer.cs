using System.Net;
using System.Text;

namespace InstructTune.Reports;

/// <summary>Renders a <see cref="Report"/> as one self-contained HTML5 page: inline CSS, inline SVG charts, no
/// script and no external URL, so it opens offline and cannot raise JavaScript errors.</summary>
public static class HtmlReportRenderer
{
    private const string Css =
        "body{font-family:sans-serif;margin:24px auto;max-width:1100px;color:#222}" +
        "h1{border-bottom:2px solid #1f77b4;padding-bottom:6px}h2{margin-top:32px;color:#1f4e79}" +
        "table{border-collapse:collapse;margin:12px 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left}" +
        "th{background:#f0f4f8}tr:nth-child(even) td{background:#fafafa}figure{margin:12px 0}";

    public static string Render(Report report)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
          .Append($"<title>{E(report.Title)}</title><style>{Css}</style></head>\n<body>\n<h1>{E(report.Title)}</h1>\n");
        foreach (var section in report.Sections)
        {
            sb.Append($"<section><h2>{E(section.Title)}</h2>\n");
            foreach (var block in section.Blocks)
            {
                switch (block)
                {
                    case ParagraphBlock p: sb.Append($"<p>{E(p.Text)}</p>\n"); break;
                    case TableBlock t:
                        sb.Append("<table><thead><tr>");
                        foreach (var h in t.Header) sb.Append($"<th>{E(h)}</th>");
                        sb.Append("</tr></thead><tbody>");
                        foreach (var row in t.Rows)
                        {
                            sb.Append("<tr>");
                            foreach (var cell in row) sb.Append($"<td>{E(cell)}</td>");
                            sb.Append("</tr>");
                        }
                        sb.Append("</tbody></table>\n");
                        break;
                    case LineChart l: sb.Append("<figure>").Append(SvgCharts.Line(l)).Append("</figure>\n"); break;
                    case BarChart b: sb.Append("<figure>").Append(SvgCharts.Bars(b)).Append("</figure>\n"); break;
                    case HeatmapChart h: sb.Append("<figure>").Append(SvgCharts.Heatmap(h)).Append("</figure>\n"); break;
                    default: throw new NotSupportedException($"unknown report block {block.GetType().Name}");
                }
            }
            sb.Append("</section>\n");
        }
        return sb.Append("</body></html>\n").ToString();
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
