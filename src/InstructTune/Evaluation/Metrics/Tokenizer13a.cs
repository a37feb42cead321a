using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.Metrics;

/// <summary>
/// sacreBLEU's default "13a" tokenizer (equivalent to mteval-v13a.pl): drop "&lt;skipped&gt;", join "-\n"
/// hyphenations, newlines to spaces, unescape four XML entities, pad with a space on each side, then four regex
/// passes — split off ASCII punctuation and symbols; split '.' and ',' unless preceded by a digit; split them
/// unless followed by a digit; split '-' after a digit — and finally collapse whitespace as Python's split() does.
/// The character classes are written out explicitly: ranges over ASCII only, so .NET and Python regexes agree.
/// </summary>
public static class Tokenizer13a
{
    private const RegexOptions Opts = RegexOptions.CultureInvariant;

    // Python: [\{-\~\[-\` -\&\(-\+\:-\@\/] — the ASCII symbol ranges {|}~ [\]^_` space!"#$%& ()*+ :;<=>? @ and /.
    private static readonly Regex Punct = new(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])", Opts);
    private static readonly Regex PeriodCommaAfterNonDigit = new(@"([^0-9])([\.,])", Opts);
    private static readonly Regex PeriodCommaBeforeNonDigit = new(@"([\.,])([^0-9])", Opts);
    private static readonly Regex DashAfterDigit = new(@"([0-9])(-)", Opts);

    public static string Tokenize(string line)
    {
        line = line.Replace("<skipped>", "").Replace("-\n", "").Replace("\n", " ");
        if (line.Contains('&'))
            line = line.Replace("&quot;", "\"").Replace("&amp;", "&").Replace("&lt;", "<").Replace("&gt;", ">");
        line = " " + line + " ";
        line = Punct.Replace(line, " $1 ");
        line = PeriodCommaAfterNonDigit.Replace(line, "$1 $2 ");
        line = PeriodCommaBeforeNonDigit.Replace(line, " $1 $2");
        line = DashAfterDigit.Replace(line, "$1 $2 ");
        return string.Join(' ', PythonText.Split(line));
    }
}
