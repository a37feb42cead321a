using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.IFEval.Instructions;

/// <summary>detectable_content:number_placeholders — at least num_placeholders lazy "[...]" spans on one line.</summary>
internal sealed partial class Placeholders(InstructionArgs a) : IInstruction
{
    private readonly long _target = a.Int("num_placeholders");
    public bool CheckFollowing(string response) => Placeholder().Count(response) >= _target;

    [GeneratedRegex(@"\[.*?\]")]
    private static partial Regex Placeholder();
}

/// <summary>
/// detectable_content:postscript — the lower-cased response has a line containing the marker: "P.S." and "P.P.S"
/// allow an optional space after each period; other markers are used literally as a pattern.
/// </summary>
internal sealed class Postscript : IInstruction
{
    private readonly Regex _pattern;

    public Postscript(InstructionArgs a)
    {
        var marker = Text.PyUnicode.Strip(a.Str("postscript_marker"));
        const string S = Text.PyUnicode.SpaceClass;
        var pattern = marker switch
        {
            "P.P.S" => S + @"*p\." + S + @"?p\." + S + "?s.*$",
            "P.S." => S + @"*p\." + S + @"?s\..*$",
            _ => S + "*" + Text.PyUnicode.Lower(marker) + ".*$",
        };
        _pattern = new Regex(pattern, RegexOptions.Multiline);
    }

    public bool CheckFollowing(string response) => _pattern.IsMatch(Text.PyUnicode.Lower(response));
}
