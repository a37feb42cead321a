using System.Text.RegularExpressions;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Evaluation.IFEval.Instructions;

/// <summary>length_constraints:number_sentences — Punkt sentence count against the threshold.</summary>
internal sealed class NumberOfSentences(InstructionArgs a, IFEvalServices services) : IInstruction
{
    private readonly long _threshold = a.Int("num_sentences");
    private readonly Relation _relation = a.Relation("relation");
    public bool CheckFollowing(string response) => _relation.Holds(services.Sentences.Tokenize(response).Count, _threshold);
}

/// <summary>length_constraints:number_words — nltk RegexpTokenizer(r"\w+") token count.</summary>
internal sealed class NumberOfWords(InstructionArgs a) : IInstruction
{
    private readonly long _threshold = a.Int("num_words");
    private readonly Relation _relation = a.Relation("relation");
    public bool CheckFollowing(string response) => _relation.Holds(PyUnicode.CountWordRuns(response), _threshold);
}

/// <summary>
/// length_constraints:number_paragraphs — parts of re.split(r"\s?\*\*\*\s?"); an empty first or last part
/// is not a paragraph, an empty inner part fails the check; the count must equal the target.
/// </summary>
internal sealed partial class NumberOfParagraphs(InstructionArgs a) : IInstruction
{
    private readonly long _target = a.Int("num_paragraphs");

    public bool CheckFollowing(string response)
    {
        var paragraphs = Divider().Split(response);
        int count = paragraphs.Length;
        for (int i = 0; i < paragraphs.Length; i++)
        {
            if (PyUnicode.Strip(paragraphs[i]).Length != 0) continue;
            if (i == 0 || i == paragraphs.Length - 1) count--;
            else return false;
        }
        return count == _target;
    }

    [GeneratedRegex(PyUnicode.SpaceClass + @"?\*\*\*" + PyUnicode.SpaceClass + "?")]
    private static partial Regex Divider();
}

/// <summary>
/// length_constraints:nth_paragraph_first_word — paragraphs split on "\n\n" (blank ones not counted); the count
/// must equal the target and the nth paragraph's first word (quotes stripped, cut at punctuation, lower-cased)
/// must equal first_word.
/// </summary>
internal sealed class NthParagraphFirstWord(InstructionArgs a) : IInstruction
{
    private readonly long _numParagraphs = a.Int("num_paragraphs");
    private readonly long _nth = a.Int("nth_paragraph");
    private readonly string _firstWord = PyUnicode.Lower(a.Str("first_word"));

    public bool CheckFollowing(string response)
    {
        var paragraphs = response.Split("\n\n");
        int count = paragraphs.Count(p => PyUnicode.Strip(p).Length != 0);
        if (_nth > count || _nth < 1) return false; // Python would index from the end for nth <= 0; IFEval data has nth >= 1
        var paragraph = PyUnicode.Strip(paragraphs[_nth - 1]);
        if (paragraph.Length == 0) return false;

        var word = PyUnicode.Strip(PyUnicode.SplitWhitespace(paragraph)[0]).TrimStart('\'').TrimStart('"');
        var first = new System.Text.StringBuilder();
        foreach (var c in word)
        {
            if (c is '.' or ',' or '?' or '!' or '\'' or '"') break;
            first.Append(char.ToLowerInvariant(c));
        }
        return count == _numParagraphs && first.ToString() == _firstWord;
    }
}
