using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.IFEval.Text;

/// <summary>
/// NLTK's <c>word_tokenize</c> (nltk 3.8): Punkt sentence split, then the improved Treebank tokenizer
/// (<c>NLTKWordTokenizer</c>) on each sentence: a fixed cascade of regex substitutions that pad quotes,
/// punctuation, brackets and contractions with spaces, followed by a whitespace split.
/// IFEval's <c>change_case:capital_word_frequency</c> counts the upper-case tokens it returns.
/// </summary>
public sealed class NltkWordTokenizer
{
    private const RegexOptions C = RegexOptions.Compiled;
    private const string W = PyUnicode.WordClass, S = PyUnicode.SpaceClass;

    // (pattern, replacement) in NLTK's order; Python's \1 / \g<0> become $1 / $0.
    private static readonly (Regex, string)[] StartingQuotes =
    [
        (new Regex("([«“‘„]|[`]+)", C), " $1 "),
        (new Regex("^\"", C), "``"),
        (new Regex("(``)", C), " $1 "),
        (new Regex("([ \\(\\[{<])(\"|'{2})", C), "$1 `` "),
        (new Regex("(?i)(')(?!re|ve|ll|m|t|s|d|n)(" + W + ")" + PyUnicode.WordBoundary, C), "$1 $2"),
    ];

    private static readonly (Regex, string)[] EndingQuotes =
    [
        (new Regex("([»”’])", C), " $1 "),
        (new Regex("''", C), " '' "),
        (new Regex("\"", C), " '' "),
        (new Regex("([^' ])('[sS]|'[mM]|'[dD]|') ", C), "$1 $2 "),
        (new Regex("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", C), "$1 $2 "),
    ];

    private static readonly (Regex, string)[] Punctuation =
    [
        (new Regex("([^\\.])(\\.)([\\]\\)}>\"'»”’ ]*)" + S + "*$", C), "$1 $2 $3 "),
        (new Regex("([:,])([^\\d])", C), " $1 $2"),
        (new Regex("([:,])$", C), " $1 "),
        (new Regex("\\.{2,}", C), " $0 "),
        (new Regex("[;@#$%&]", C), " $0 "),
        (new Regex("([^\\.])(\\.)([\\]\\)}>\"']*)" + S + "*$", C), "$1 $2$3 "),
        (new Regex("[?!]", C), " $0 "),
        (new Regex("([^'])' ", C), "$1 ' "),
        (new Regex("[*]", C), " $0 "),
    ];

    private static readonly (Regex, string) ParensBrackets = (new Regex("[\\]\\[\\(\\)\\{\\}\\<\\>]", C), " $0 ");
    private static readonly (Regex, string) DoubleDashes = (new Regex("--", C), " -- ");

    private static readonly Regex[] Contractions =
    [
        .. new[] { "(can)(not)", "(d)('ye)", "(gim)(me)", "(gon)(na)", "(got)(ta)", "(lem)(me)", "(more)('n)" }
            .Select(p => new Regex("(?i)" + PyUnicode.WordBoundary + p + PyUnicode.WordBoundary, C)),
        new Regex("(?i)" + PyUnicode.WordBoundary + "(wan)(na)(?=" + S + ")", C),
        new Regex("(?i) ('t)(is)" + PyUnicode.WordBoundary, C),
        new Regex("(?i) ('t)(was)" + PyUnicode.WordBoundary, C),
    ];

    private readonly PunktSentenceTokenizer _sentences;

    public NltkWordTokenizer(PunktSentenceTokenizer sentences) => _sentences = sentences;

    /// <summary><c>nltk.word_tokenize(text)</c>.</summary>
    public List<string> WordTokenize(string text)
    {
        var tokens = new List<string>();
        foreach (var sentence in _sentences.Tokenize(text)) tokens.AddRange(TokenizeSentence(sentence));
        return tokens;
    }

    /// <summary><c>NLTKWordTokenizer().tokenize(sentence)</c> (parentheses kept as they are).</summary>
    public static List<string> TokenizeSentence(string text)
    {
        foreach (var (re, sub) in StartingQuotes) text = re.Replace(text, sub);
        foreach (var (re, sub) in Punctuation) text = re.Replace(text, sub);
        text = ParensBrackets.Item1.Replace(text, ParensBrackets.Item2);
        text = DoubleDashes.Item1.Replace(text, DoubleDashes.Item2);
        text = " " + text + " ";
        foreach (var (re, sub) in EndingQuotes) text = re.Replace(text, sub);
        foreach (var re in Contractions) text = re.Replace(text, " $1 $2 ");
        return PyUnicode.SplitWhitespace(text);
    }
}
