using System.Text.RegularExpressions;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Evaluation.IFEval.Instructions;

// keywords:* — the official code uses each keyword as a regular expression, case-insensitively.

/// <summary>keywords:existence — every keyword matches somewhere (re.search, IGNORECASE).</summary>
internal sealed class KeywordExistence(InstructionArgs a) : IInstruction
{
    private readonly Regex[] _keywords = a.StrList("keywords").Select(k => KeywordRegex.Of(k, a)).ToArray();
    public bool CheckFollowing(string response) => _keywords.All(k => k.IsMatch(response));
}

/// <summary>keywords:frequency — the number of (non-overlapping, case-insensitive) matches of the stripped keyword.</summary>
internal sealed class KeywordFrequency(InstructionArgs a) : IInstruction
{
    private readonly Regex _keyword = KeywordRegex.Of(PyUnicode.Strip(a.Str("keyword")), a);
    private readonly long _frequency = a.Int("frequency");
    private readonly Relation _relation = a.Relation("relation");
    public bool CheckFollowing(string response) => _relation.Holds(_keyword.Matches(response).Count, _frequency);
}

/// <summary>keywords:forbidden_words — no word matches between word boundaries (\b word \b, IGNORECASE).</summary>
internal sealed class ForbiddenWords(InstructionArgs a) : IInstruction
{
    private readonly Regex[] _words = a.StrList("forbidden_words")
        .Select(w => KeywordRegex.Of(PyUnicode.WordBoundary + "(?:" + w + ")" + PyUnicode.WordBoundary, a)).ToArray();
    public bool CheckFollowing(string response) => !_words.Any(w => w.IsMatch(response));
}

/// <summary>
/// keywords:letter_frequency — occurrences of the letter in the lower-cased response. Under
/// <see cref="IFEvalRules.Release2023"/> a letter outside a–z is first replaced by a random ASCII letter.
/// </summary>
internal sealed class LetterFrequency : IInstruction
{
    private readonly char _letter;
    private readonly long _frequency;
    private readonly Relation _relation;

    private const string AsciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"; // string.ascii_letters

    public LetterFrequency(InstructionArgs a, IFEvalServices services)
    {
        var letter = a.Str("letter");
        bool asciiLetter = letter.Length == 1 && PyUnicode.Lower(letter)[0] is >= 'a' and <= 'z';
        if (services.Rules == IFEvalRules.Release2023 && !asciiLetter)
            letter = AsciiLetters[services.RuleRandom.RandBelow(AsciiLetters.Length)].ToString();
        else if (letter.Length != 1)
            throw new InstructionArgumentException($"{a.Where}: argument 'letter' must be one character, got '{letter}'");
        _letter = PyUnicode.Lower(letter)[0];
        _frequency = a.Int("let_frequency");
        _relation = a.Relation("let_relation");
    }

    public bool CheckFollowing(string response)
    {
        var lower = PyUnicode.Lower(response);
        int count = 0;
        foreach (var c in lower) if (c == _letter) count++;
        return _relation.Holds(count, _frequency);
    }
}

internal static class KeywordRegex
{
    /// <summary>A user pattern as Python's re would read it under IGNORECASE (plain words in practice).</summary>
    public static Regex Of(string pattern, InstructionArgs a)
    {
        try
        {
            return new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new InstructionArgumentException($"{a.Where}: '{pattern}' is not a valid pattern ({e.Message})");
        }
    }
}
