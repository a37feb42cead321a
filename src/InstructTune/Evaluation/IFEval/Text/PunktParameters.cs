namespace InstructTune.Evaluation.IFEval.Text;

/// <summary>
/// The learned parameters of a Punkt model (Kiss &amp; Strunk 2006): abbreviation types, collocations,
/// frequent sentence starters and orthographic-context flags, read from NLTK's <c>punkt_tab</c> text layout
/// (<c>abbrev_types.txt</c>, <c>collocations.tab</c>, <c>sentence_starters.txt</c>, <c>ortho_context.tab</c>).
/// </summary>
public sealed class PunktParameters
{
    // Orthographic-context bits, as NLTK's punkt.py defines them.
    public const int OrthoBegUc = 1 << 1, OrthoMidUc = 1 << 2, OrthoUnkUc = 1 << 3;
    public const int OrthoBegLc = 1 << 4, OrthoMidLc = 1 << 5, OrthoUnkLc = 1 << 6;
    public const int OrthoUc = OrthoBegUc + OrthoMidUc + OrthoUnkUc;
    public const int OrthoLc = OrthoBegLc + OrthoMidLc + OrthoUnkLc;

    public HashSet<string> AbbrevTypes { get; } = new(StringComparer.Ordinal);
    public HashSet<(string, string)> Collocations { get; } = new();
    public HashSet<string> SentStarters { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, int> OrthoContext { get; } = new(StringComparer.Ordinal);

    /// <summary>Flags of a type, 0 when unseen (NLTK's defaultdict(int)).</summary>
    public int Ortho(string type) => OrthoContext.TryGetValue(type, out var f) ? f : 0;

    /// <summary>Loads the four files from <paramref name="dir"/>; a malformed line is an error naming file and line.</summary>
    public static PunktParameters Load(string dir)
    {
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Punkt parameter folder not found: {dir}");
        var p = new PunktParameters();
        foreach (var line in ReadLines(dir, "abbrev_types.txt")) p.AbbrevTypes.Add(line.Text);
        foreach (var line in ReadLines(dir, "sentence_starters.txt")) p.SentStarters.Add(line.Text);
        foreach (var line in ReadLines(dir, "collocations.tab"))
        {
            var f = line.Split(2);
            p.Collocations.Add((f[0], f[1]));
        }
        foreach (var line in ReadLines(dir, "ortho_context.tab"))
        {
            var f = line.Split(2);
            if (!int.TryParse(f[1], out var flags))
                throw new FormatException($"{line.File}:{line.Number}: flags '{f[1]}' is not an integer");
            p.OrthoContext[f[0]] = flags;
        }
        return p;
    }

    private readonly record struct Line(string File, int Number, string Text)
    {
        public string[] Split(int n)
        {
            var f = Text.Split('\t');
            if (f.Length != n)
                throw new FormatException($"{File}:{Number}: expected {n} tab-separated fields, got {f.Length}");
            return f;
        }
    }

    private static IEnumerable<Line> ReadLines(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        if (!File.Exists(path)) throw new FileNotFoundException($"Punkt parameter file not found: {path}", path);
        int n = 0;
        foreach (var raw in File.ReadLines(path))
        {
            n++;
            var text = raw.TrimEnd('\r');
            if (text.Length > 0) yield return new Line(path, n, text);
        }
    }
}
