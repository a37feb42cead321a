using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Evaluation.IFEval.Instructions;

/// <summary>startend:end_checker — stripped, outer double quotes removed, lower-cased response ends with the phrase.</summary>
internal sealed class EndChecker(InstructionArgs a) : IInstruction
{
    private readonly string _end = PyUnicode.Lower(PyUnicode.Strip(a.Str("end_phrase")));
    public bool CheckFollowing(string response) =>
        PyUnicode.Lower(PyUnicode.Strip(response).Trim('"')).EndsWith(_end, StringComparison.Ordinal);
}

/// <summary>startend:quotation — the stripped response is longer than one character and starts and ends with '"'.</summary>
internal sealed class Quotation : IInstruction
{
    public bool CheckFollowing(string response)
    {
        var value = PyUnicode.Strip(response);
        return value.Length > 1 && value[0] == '"' && value[^1] == '"';
    }
}

/// <summary>combination:two_responses — exactly two non-blank, different parts around "******" (blank inner parts fail).</summary>
internal sealed class TwoResponses : IInstruction
{
    public bool CheckFollowing(string response)
    {
        var parts = response.Split("******");
        var valid = new List<string>();
        for (int i = 0; i < parts.Length; i++)
        {
            if (PyUnicode.Strip(parts[i]).Length == 0)
            {
                if (i != 0 && i != parts.Length - 1) return false;
            }
            else valid.Add(parts[i]);
        }
        return valid.Count == 2 && PyUnicode.Strip(valid[0]) != PyUnicode.Strip(valid[1]);
    }
}

/// <summary>combination:repeat_prompt — the stripped, lower-cased response starts with the stripped, lower-cased prompt_to_repeat.</summary>
internal sealed class RepeatPrompt(InstructionArgs a) : IInstruction
{
    private readonly string _prompt = PyUnicode.Lower(PyUnicode.Strip(a.Str("prompt_to_repeat")));
    public bool CheckFollowing(string response) =>
        PyUnicode.Lower(PyUnicode.Strip(response)).StartsWith(_prompt, StringComparison.Ordinal);
}
