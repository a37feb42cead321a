using System.Text.RegularExpressions;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Evaluation.IFEval.Instructions;

/// <summary>detectable_format:number_bullet_lists — lines "^\s*\*[^\*].*$" plus lines "^\s*-.*$" must number exactly num_bullets.</summary>
internal sealed partial class BulletLists(InstructionArgs a) : IInstruction
{
    private readonly long _target = a.Int("num_bullets");
    public bool CheckFollowing(string response) => StarBullet().Count(response) + DashBullet().Count(response) == _target;

    [GeneratedRegex("^" + PyUnicode.SpaceClass + @"*\*[^\*].*$", RegexOptions.Multiline)]
    private static partial Regex StarBullet();

    [GeneratedRegex("^" + PyUnicode.SpaceClass + "*-.*$", RegexOptions.Multiline)]
    private static partial Regex DashBullet();
}

/// <summary>detectable_format:constrained_response — the stripped response contains one of the three answers.</summary>
internal sealed class ConstrainedResponse : IInstruction
{
    private static readonly string[] Options = ["My answer is yes.", "My answer is no.", "My answer is maybe."];
    public bool CheckFollowing(string response)
    {
        var value = PyUnicode.Strip(response);
        return Options.Any(o => value.Contains(o, StringComparison.Ordinal));
    }
}

/// <summary>
/// detectable_format:number_highlighted_sections — non-blank "*...*" spans plus non-blank "**...**" spans
/// (each found separately, so a bold span counts in both) must reach num_highlights.
/// </summary>
internal sealed partial class HighlightedSections(InstructionArgs a) : IInstruction
{
    private readonly long _target = a.Int("num_highlights");

    public bool CheckFollowing(string response)
    {
        int count = 0;
        foreach (Match m in Single().Matches(response))
            if (PyUnicode.Strip(m.Value.Trim('*')).Length != 0) count++;
        foreach (Match m in Double().Matches(response))
            if (PyUnicode.Strip(m.Value[2..^2]).Length != 0) count++;
        return count >= _target;
    }

    [GeneratedRegex(@"\*[^\n\*]*\*")]
    private static partial Regex Single();

    [GeneratedRegex(@"\*\*[^\n\*]*\*\*")]
    private static partial Regex Double();
}

/// <summary>detectable_format:multiple_sections — matches of "\s?SPLITTER\s?\d+\s?" (sections after the split) reach num_sections.</summary>
internal sealed class MultipleSections : IInstruction
{
    private readonly Regex _splitter;
    private readonly long _target;

    public MultipleSections(InstructionArgs a)
    {
        var splitter = PyUnicode.Strip(a.Str("section_spliter"));
        _splitter = new Regex(PyUnicode.SpaceClass + "?" + splitter + PyUnicode.SpaceClass + @"?\d+" + PyUnicode.SpaceClass + "?");
        _target = a.Int("num_sections");
    }

    public bool CheckFollowing(string response) => _splitter.Split(response).Length - 1 >= _target;
}

/// <summary>detectable_format:json_format — after stripping and removing ```json/```Json/```JSON/``` fences, json.loads succeeds.</summary>
internal sealed class JsonFormat : IInstruction
{
    public bool CheckFollowing(string response)
    {
        var value = PyUnicode.Strip(response);
        value = RemovePrefix(value, "```json");
        value = RemovePrefix(value, "```Json");
        value = RemovePrefix(value, "```JSON");
        value = RemovePrefix(value, "```");
        if (value.EndsWith("```", StringComparison.Ordinal)) value = value[..^3];
        return PyJson.IsValid(PyUnicode.Strip(value));
    }

    private static string RemovePrefix(string s, string p) => s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s;
}

/// <summary>detectable_format:title — some "&lt;&lt;...&gt;&gt;" on one line has a non-blank inside.</summary>
internal sealed partial class Title : IInstruction
{
    public bool CheckFollowing(string response)
    {
        foreach (Match m in TitleRe().Matches(response))
            if (PyUnicode.Strip(m.Value.TrimStart('<').TrimEnd('>')).Length != 0) return true;
        return false;
    }

    [GeneratedRegex(@"<<[^\n]+>>")]
    private static partial Regex TitleRe();
}
