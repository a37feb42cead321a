using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.IFEval.Text;

/// <summary>A word token with the annotations Punkt's two passes attach (NLTK's <c>PunktToken</c>).</summary>
internal sealed partial class PunktToken
{
    public string Tok { get; }
    /// <summary>Lower-cased token with numbers collapsed to <c>##number##</c>.</summary>
    public string Type { get; }
    public bool PeriodFinal { get; }
    public bool ParaStart { get; init; }
    public bool LineStart { get; init; }
    public bool SentBreak { get; set; }
    public bool Abbr { get; set; }
    public bool Ellipsis { get; set; }

    public PunktToken(string tok)
    {
        Tok = tok;
        var lower = PyUnicode.Lower(tok);
        Type = Numeric().IsMatch(lower) ? "##number##" : lower;
        PeriodFinal = tok.EndsWith('.');
    }

    /// <summary>The type without a final period.</summary>
    public string TypeNoPeriod => Type.Length > 1 && Type[^1] == '.' ? Type[..^1] : Type;

    /// <summary>The type without its final period when that period is a sentence break.</summary>
    public string TypeNoSentPeriod => SentBreak ? TypeNoPeriod : Type;

    public bool FirstUpper => PyUnicode.IsUpperCp(PyUnicode.FirstRune(Tok));
    public bool FirstLower => PyUnicode.IsLowerCp(PyUnicode.FirstRune(Tok));
    public bool IsEllipsis => EllipsisRe().IsMatch(Tok);
    public bool IsInitial => InitialRe().IsMatch(Tok);

    // NLTK: r"^-?[\.,]?\d[\d,\.-]*\.?$" (substituted over the whole lower-cased token).
    [GeneratedRegex(@"^-?[\.,]?\d[\d,\.-]*\.?$")]
    private static partial Regex Numeric();

    // NLTK: r"\.\.+$" with re.match (anchored at the start).
    [GeneratedRegex(@"^\.\.+$")]
    private static partial Regex EllipsisRe();

    // NLTK: r"[^\W\d]\.$" with re.match: one letter then a period.
    [GeneratedRegex(@"^[\p{L}\p{Nl}\p{No}_]\.$")]
    private static partial Regex InitialRe();
}
