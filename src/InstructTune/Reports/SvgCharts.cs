using System.Globalization;
using System.Net;
using System.Text;

namespace InstructTune.Reports;

/// <summary>
/// Renders charts as standalone inline SVG (no script, no fonts to fetch). Axes are linear with "nice" ticks;
/// the y axis of bar charts starts at 0 (or below, for negative values). Colours come from a fixed palette so the
/// same series keeps its colour across charts of one report.
/// </summary>
public static class SvgCharts
{
    private const int W = 720, H = 360, Left = 64, Right = 150, Top = 36, Bottom = 56;
    private static readonly string[] Palette =
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
    private static string E(string s) => WebUtility.HtmlEncode(s);
    public static string Colour(int i) => Palette[i % Palette.Length];

    public static string Line(LineChart chart)
    {
        var pts = chart.Series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
        var (xMin, xMax) = pts.Count > 0 ? (pts.Min(p => p.X), pts.Max(p => p.X)) : (0.0, 1.0);
        var (yMin, yMax) = pts.Count > 0 ? (pts.Min(p => p.Y), pts.Max(p => p.Y)) : (0.0, 1.0);
        var xTicks = NiceTicks(xMin, xMax);
        var yTicks = NiceTicks(yMin, yMax);
        var sb = Begin(chart.Title);
        Axes(sb, xTicks, yTicks, chart.XLabel, chart.YLabel, xNumeric: true);
        for (int s = 0; s < chart.Series.Count; s++)
        {
            var segment = new List<string>();
            foreach (var (x, y) in chart.Series[s].Points)
            {
                if (!double.IsFinite(y) || !double.IsFinite(x)) { Flush(); continue; }
                segment.Add($"{F(X(x, xTicks))},{F(Y(y, yTicks))}");
                sb.Append($"<circle cx=\"{F(X(x, xTicks))}\" cy=\"{F(Y(y, yTicks))}\" r=\"3\" fill=\"{Colour(s)}\"><title>{E(chart.Series[s].Name)}: ({F(x)}, {y.ToString("G4", CultureInfo.InvariantCulture)})</title></circle>");
            }
            Flush();

            void Flush()
            {
                if (segment.Count > 1)
                    sb.Append($"<polyline fill=\"none\" stroke=\"{Colour(s)}\" stroke-width=\"2\" points=\"{string.Join(' ', segment)}\"/>");
                segment.Clear();
            }
        }
        Legend(sb, chart.Series.Select(s => s.Name).ToList());
        return sb.Append("</svg>").ToString();
    }

    public static string Bars(BarChart chart)
    {
        chart.Validate();
        var values = chart.Series.SelectMany(s => s.Bars)
            .SelectMany(b => new[] { b.Value, b.Low ?? b.Value, b.High ?? b.Value }).Where(double.IsFinite).ToList();
        var yTicks = NiceTicks(Math.Min(0, values.DefaultIfEmpty(0).Min()), Math.Max(0, values.DefaultIfEmpty(1).Max()));
        var sb = Begin(chart.Title);
        Axes(sb, [], yTicks, "", chart.YLabel, xNumeric: false);
        int groups = Math.Max(chart.Categories.Count, 1), perGroup = Math.Max(chart.Series.Count, 1);
        double groupW = (double)(W - Left - Right) / groups, barW = groupW * 0.8 / perGroup;
        for (int c = 0; c < chart.Categories.Count; c++)
        {
            double gx = Left + c * groupW;
            sb.Append($"<text x=\"{F(gx + groupW / 2)}\" y=\"{H - Bottom + 18}\" text-anchor=\"middle\" font-size=\"12\">{E(chart.Categories[c])}</text>");
            for (int s = 0; s < chart.Series.Count; s++)
            {
                var bar = chart.Series[s].Bars[c];
                if (!double.IsFinite(bar.Value)) continue;
                double x = gx + groupW * 0.1 + s * barW, y0 = Y(0, yTicks), y1 = Y(bar.Value, yTicks);
                sb.Append($"<rect x=\"{F(x)}\" y=\"{F(Math.Min(y0, y1))}\" width=\"{F(barW * 0.9)}\" height=\"{F(Math.Abs(y0 - y1))}\" fill=\"{Colour(s)}\"><title>{E(chart.Series[s].Name)} / {E(chart.Categories[c])}: {bar.Value.ToString("G4", CultureInfo.InvariantCulture)}</title></rect>");
                if (bar.Low is double lo && bar.High is double hi && double.IsFinite(lo) && double.IsFinite(hi))
                {
                    double cx = x + barW * 0.45;
                    sb.Append($"<path d=\"M{F(cx)},{F(Y(lo, yTicks))}V{F(Y(hi, yTicks))}M{F(cx - 4)},{F(Y(lo, yTicks))}H{F(cx + 4)}M{F(cx - 4)},{F(Y(hi, yTicks))}H{F(cx + 4)}\" stroke=\"#222\" stroke-width=\"1.5\" fill=\"none\"/>");
                }
            }
        }
        Legend(sb, chart.Series.Select(s => s.Name).ToList());
        return sb.Append("</svg>").ToString();
    }

    private static StringBuilder Begin(string title) => new StringBuilder()
        .Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" font-family=\"sans-serif\">")
        .Append($"<title>{E(title)}</title><rect width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>")
        .Append($"<text x=\"{W / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{E(title)}</text>");

    private static void Axes(StringBuilder sb, double[] xTicks, double[] yTicks, string xLabel, string yLabel, bool xNumeric)
    {
        int x0 = Left, x1 = W - Right, y0 = H - Bottom, y1 = Top;
        foreach (var t in yTicks)
            sb.Append($"<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{F(Y(t, yTicks))}\" y2=\"{F(Y(t, yTicks))}\" stroke=\"#e5e5e5\"/>")
              .Append($"<text x=\"{x0 - 6}\" y=\"{F(Y(t, yTicks) + 4)}\" text-anchor=\"end\" font-size=\"11\">{F(t)}</text>");
        if (xNumeric)
            foreach (var t in xTicks)
                sb.Append($"<text x=\"{F(X(t, xTicks))}\" y=\"{y0 + 16}\" text-anchor=\"middle\" font-size=\"11\">{F(t)}</text>");
        sb.Append($"<path d=\"M{x0},{y1}V{y0}H{x1}\" stroke=\"#333\" fill=\"none\"/>")
          .Append($"<text x=\"{(x0 + x1) / 2}\" y=\"{H - 14}\" text-anchor=\"middle\" font-size=\"12\">{E(xLabel)}</text>")
          .Append($"<text transform=\"translate(16,{(y0 + y1) / 2}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">{E(yLabel)}</text>");
    }

    private static void Legend(StringBuilder sb, List<string> names)
    {
        for (int i = 0; i < names.Count; i++)
            sb.Append($"<rect x=\"{W - Right + 14}\" y=\"{Top + i * 20}\" width=\"12\" height=\"12\" fill=\"{Colour(i)}\"/>")
              .Append($"<text x=\"{W - Right + 32}\" y=\"{Top + i * 20 + 11}\" font-size=\"12\">{E(names[i])}</text>");
    }

    private static double X(double v, double[] ticks) => Left + Frac(v, ticks) * (W - Left - Right);
    private static double Y(double v, double[] ticks) => H - Bottom - Frac(v, ticks) * (H - Top - Bottom);
    private static double Frac(double v, double[] t) => t[^1] > t[0] ? (v - t[0]) / (t[^1] - t[0]) : 0.5;

    /// <summary>About five round tick values (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi].</summary>
    /// <summary>A heatmap: one cell per value, shaded from the smallest finite value (light) to the largest (dark blue).</summary>
    public static string Heatmap(HeatmapChart chart)
    {
        const int cell = 64, left = 160, top = 48;
        int rows = chart.RowLabels.Count, cols = chart.ColumnLabels.Count;
        var finite = chart.Values.SelectMany(r => r).Where(double.IsFinite).ToList();
        double lo = finite.Count > 0 ? finite.Min() : 0, hi = finite.Count > 0 ? finite.Max() : 1;
        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{left + cols * cell + 16}\" height=\"{top + rows * cell + 16}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.Append($"<text x=\"{left}\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{E(chart.Title)}</text>");
        for (int j = 0; j < cols; j++)
            sb.Append($"<text x=\"{left + j * cell + cell / 2}\" y=\"{top - 8}\" text-anchor=\"middle\">{E(chart.ColumnLabels[j])}</text>");
        for (int i = 0; i < rows; i++)
        {
            sb.Append($"<text x=\"{left - 8}\" y=\"{top + i * cell + cell / 2 + 4}\" text-anchor=\"end\">{E(chart.RowLabels[i])}</text>");
            for (int j = 0; j < cols; j++)
            {
                double v = j < chart.Values[i].Count ? chart.Values[i][j] : double.NaN;
                double t = double.IsFinite(v) && hi > lo ? (v - lo) / (hi - lo) : 0.5;
                string fill = double.IsFinite(v) ? $"rgb({(int)(240 - 209 * t)},{(int)(244 - 125 * t)},{(int)(248 - 68 * t)})" : "#ffffff";
                string ink = t > 0.55 ? "#ffffff" : "#222222";
                sb.Append($"<rect x=\"{left + j * cell}\" y=\"{top + i * cell}\" width=\"{cell}\" height=\"{cell}\" fill=\"{fill}\" stroke=\"#ccc\"/>");
                if (double.IsFinite(v))
                    sb.Append($"<text x=\"{left + j * cell + cell / 2}\" y=\"{top + i * cell + cell / 2 + 4}\" text-anchor=\"middle\" fill=\"{ink}\">{v.ToString("0.000", CultureInfo.InvariantCulture)}</text>");
            }
        }
        return sb.Append("</svg>").ToString();
    }

    public static double[] NiceTicks(double lo, double hi)
    {
        if (!double.IsFinite(lo) || !double.IsFinite(hi)) (lo, hi) = (0, 1);
        if (hi - lo < 1e-12) { lo -= 0.5; hi += 0.5; }
        double raw = (hi - lo) / 5, mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1, 2, 2.5, 5, 10 }.Select(m => m * mag).First(s => s >= raw);
        double start = Math.Floor(lo / step) * step, end = Math.Ceiling(hi / step) * step;
        var ticks = new List<double>();
        for (double t = start; t <= end + step * 1e-9; t += step) ticks.Add(Math.Round(t, 10));
        return ticks.ToArray();
    }
}
