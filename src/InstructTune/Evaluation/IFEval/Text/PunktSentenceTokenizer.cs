using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.IFEval.Text;

/// <summary>
/// Punkt sentence splitting with pre-trained parameters, reproducing NLTK 3.8's
/// <c>PunktSentenceTokenizer.tokenize(text)</c> (default <c>PunktLanguageVars</c>, boundaries realigned):
/// candidate breaks are found with the period-context regex, each candidate's local context is word-tokenised
/// and annotated (first pass by type, second pass by collocation, orthographic and sentence-starter heuristics),
/// and a slice ends where the context holds a sentence break before its last token.
/// </summary>
/// <remarks>
/// Regexes are NLTK's with Python's Unicode <c>\s</c> (see <see cref="PyUnicode.SpaceClass"/>). Offsets are
/// UTF-16 indices rather than code points; they only differ in meaning for astral characters, which never
/// take part in a boundary decision.
/// </remarks>
public sealed class PunktSentenceTokenizer
{
    private const string S = PyUnicode.SpaceClass, NS = PyUnicode.NonSpaceClass;
    private const string NonWord = @"(?:[)"";}\]\*:@'\({\[?!])";
    private const string MultiChar = @"(?:\-{2,}|\.{2,}|(?:\." + S + @"){2,}\.)";
    private const string WordStart = @"[^\(""`{\[:;&\#\*@\)}\]\-,]";

    // PunktLanguageVars._word_tokenize_fmt: multi-char punctuation | a word up to its end | any other non-space.
    private static readonly Regex WordTokenizer = new(
        MultiChar + "|(?=" + WordStart + ")" + NS + "+?(?=" + S + "|$|" + NonWord + "|" + MultiChar
        + "|,(?=$|" + S + "|" + NonWord + "|" + MultiChar + "))|" + NS, RegexOptions.Compiled);

    // PunktLanguageVars._period_context_fmt: a sentence-end char followed by punctuation or by space and a token.
    private static readonly Regex PeriodContext = new(
        @"[.?!](?=(?<after_tok>" + NonWord + "|" + S + "+(?<next_tok>" + NS + "+)))", RegexOptions.Compiled);

    // PunktLanguageVars.re_boundary_realignment (MULTILINE, used with match at the start).
    private static readonly Regex BoundaryRealignment = new(
        @"\G[""')\]}]+?(?:" + S + "+|(?=--)|$)", RegexOptions.Compiled | RegexOptions.Multiline);

    private static readonly string[] Punctuation = [";", ":", ",", ".", "!", "?"];

    private readonly PunktParameters _params;

    public PunktSentenceTokenizer(PunktParameters parameters) => _params = parameters;

    /// <summary>Loads parameters from a punkt_tab folder.</summary>
    public static PunktSentenceTokenizer Load(string dir) => new(PunktParameters.Load(dir));

    /// <summary>The sentences of <paramref name="text"/>, as NLTK's <c>tokenize</c> returns them.</summary>
    public List<string> Tokenize(string text) =>
        SpanTokenize(text).Select(s => text.Substring(s.Start, s.End - s.Start)).ToList();

    /// <summary>The (start, end) spans of the sentences, boundaries realigned.</summary>
    public List<(int Start, int End)> SpanTokenize(string text) => RealignBoundaries(text, SlicesFromText(text));

    private List<(int Start, int End)> SlicesFromText(string text)
    {
        var slices = new List<(int, int)>();
        int lastBreak = 0;
        foreach (var (match, context) in MatchPotentialEndContexts(text))
        {
            if (!TextContainsSentBreak(context)) continue;
            slices.Add((lastBreak, match.Index + match.Length));
            var next = match.Groups["next_tok"];
            lastBreak = next.Success ? next.Index : match.Index + match.Length;
        }
        // The last sentence does not keep trailing whitespace.
        slices.Add((lastBreak, PyUnicode.RStrip(text).Length));
        return slices;
    }

    /// <summary>
    /// NLTK's <c>_match_potential_end_contexts</c>: each candidate with the word before it and the token
    /// after it; a candidate whose preceding word overlaps the previous candidate's replaces it.
    /// </summary>
    private static IEnumerable<(Match, string)> MatchPotentialEndContexts(string text)
    {
        (int Start, int Stop) previousSlice = (0, 0);
        Match? previousMatch = null;
        for (var match = PeriodContext.Match(text); match.Success; match = match.NextMatch())
        {
            int index = LastAsciiWhitespace(text, previousSlice.Stop, match.Index);
            int wordStart = index != 0 ? index + previousSlice.Stop + 1 : previousSlice.Start;
            if (previousMatch != null && previousSlice.Stop <= wordStart)
                yield return (previousMatch, Context(text, previousSlice, previousMatch));
            previousMatch = match;
            previousSlice = (wordStart, match.Index);
        }
        if (previousMatch != null) yield return (previousMatch, Context(text, previousSlice, previousMatch));
    }

    private static string Context(string text, (int Start, int Stop) slice, Match m) =>
        text.Substring(slice.Start, Math.Max(0, slice.Stop - slice.Start)) + m.Value + m.Groups["after_tok"].Value;

    /// <summary>Index (relative to <paramref name="from"/>) of the last <c>string.whitespace</c> char in text[from..to), 0 if none.</summary>
    private static int LastAsciiWhitespace(string text, int from, int to)
    {
        for (int i = to - 1; i >= from; i--)
            if (text[i] is ' ' or '\t' or '\n' or '\r' or '\x0b' or '\x0c') return i - from;
        return 0;
    }

    private List<(int Start, int End)> RealignBoundaries(string text, List<(int Start, int End)> slices)
    {
        var result = new List<(int, int)>();
        int realign = 0;
        for (int i = 0; i < slices.Count; i++)
        {
            var s1 = (Start: slices[i].Start + realign, slices[i].End);
            if (i + 1 == slices.Count)
            {
                if (s1.End > s1.Start) result.Add(s1);
                continue;
            }
            var s2 = slices[i + 1];
            var sentence2 = text.Substring(s2.Start, Math.Max(0, s2.End - s2.Start));
            var m = BoundaryRealignment.Match(sentence2);
            if (m.Success)
            {
                result.Add((s1.Start, s2.Start + PyUnicode.RStrip(m.Value).Length));
                realign = m.Length;
            }
            else
            {
                realign = 0;
                if (s1.End > s1.Start) result.Add(s1);
            }
        }
        return result;
    }

    /// <summary>True when some token other than the last of <paramref name="text"/> is a sentence break.</summary>
    internal bool TextContainsSentBreak(string text)
    {
        var tokens = TokenizeWords(text);
        AnnotateFirstPass(tokens);
        for (int i = 0; i + 1 < tokens.Count; i++)
        {
            SecondPassAnnotation(tokens[i], tokens[i + 1]);
            if (tokens[i].SentBreak) return true;
        }
        return false;
    }

    /// <summary>Punkt word tokens of each non-blank line, marking line and paragraph starts.</summary>
    private static List<PunktToken> TokenizeWords(string text)
    {
        var tokens = new List<PunktToken>();
        bool paraStart = false;
        foreach (var line in text.Split('\n'))
        {
            if (PyUnicode.Strip(line).Length == 0) { paraStart = true; continue; }
            bool first = true;
            for (var m = WordTokenizer.Match(line); m.Success; m = m.NextMatch())
            {
                tokens.Add(new PunktToken(m.Value) { ParaStart = first && paraStart, LineStart = first });
                if (first) paraStart = false;
                first = false;
            }
        }
        return tokens;
    }

    private void AnnotateFirstPass(List<PunktToken> tokens)
    {
        foreach (var t in tokens)
        {
            var tok = t.Tok;
            if (tok is "." or "?" or "!") t.SentBreak = true;
            else if (t.IsEllipsis) t.Ellipsis = true;
            else if (t.PeriodFinal && !tok.EndsWith("..", StringComparison.Ordinal))
            {
                var stem = PyUnicode.Lower(tok[..^1]);
                var lastPart = stem[(stem.LastIndexOf('-') + 1)..];
                if (_params.AbbrevTypes.Contains(stem) || _params.AbbrevTypes.Contains(lastPart)) t.Abbr = true;
                else t.SentBreak = true;
            }
        }
    }

    /// <summary>Token-based reclassification of <paramref name="t1"/> given the following token (NLTK section 4).</summary>
    private void SecondPassAnnotation(PunktToken t1, PunktToken t2)
    {
        if (!t1.PeriodFinal) return;
        var typ = t1.TypeNoPeriod;
        var nextTyp = t2.TypeNoSentPeriod;
        bool isInitial = t1.IsInitial;

        // Collocation heuristic: a known collocation across the period is an abbreviation.
        if (_params.Collocations.Contains((typ, nextTyp)))
        {
            t1.SentBreak = false;
            t1.Abbr = true;
            return;
        }

        // An abbreviation or ellipsis is also a break if the next word looks like a sentence start.
        if ((t1.Abbr || t1.Ellipsis) && !isInitial)
        {
            if (OrthoHeuristic(t2) == true) { t1.SentBreak = true; return; }
            if (t2.FirstUpper && _params.SentStarters.Contains(nextTyp)) { t1.SentBreak = true; return; }
        }

        // Initials and ordinals followed by a non-starter are abbreviations.
        if (isInitial || typ == "##number##")
        {
            var starter = OrthoHeuristic(t2);
            if (starter == false)
            {
                t1.SentBreak = false;
                t1.Abbr = true;
                return;
            }
            if (starter == null && isInitial && t2.FirstUpper && (_params.Ortho(nextTyp) & PunktParameters.OrthoLc) == 0)
            {
                t1.SentBreak = false;
                t1.Abbr = true;
            }
        }
    }

    /// <summary>Orthographic heuristic: true (starts a sentence), false (does not) or null (unknown).</summary>
    private bool? OrthoHeuristic(PunktToken t)
    {
        if (Array.IndexOf(Punctuation, t.Tok) >= 0) return false;
        int ortho = _params.Ortho(t.TypeNoSentPeriod);
        if (t.FirstUpper && (ortho & PunktParameters.OrthoLc) != 0 && (ortho & PunktParameters.OrthoMidUc) == 0)
            return true;
        if (t.FirstLower && ((ortho & PunktParameters.OrthoUc) != 0 || (ortho & PunktParameters.OrthoBegLc) == 0))
            return false;
        return null;
    }
}
