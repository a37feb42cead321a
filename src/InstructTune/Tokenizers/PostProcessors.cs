namespace InstructTune.Tokenizers;

/// <summary>A tokenizer.json post-processor for a single sequence: adds special tokens (when asked) and may adjust
/// offsets. Special tokens get the empty offset (0, 0), as in HF.</summary>
public interface IPostProcessor
{
    void Process(List<int> ids, List<(int Start, int End)> offsets, bool addSpecialTokens, Func<int, string?> idToToken);
}

internal sealed class SequenceProcessor(IReadOnlyList<IPostProcessor> items) : IPostProcessor
{
    public IReadOnlyList<IPostProcessor> Items => items;

    public void Process(List<int> ids, List<(int Start, int End)> offsets, bool add, Func<int, string?> idToToken)
    {
        foreach (var p in items) p.Process(ids, offsets, add, idToToken);
    }
}

/// <summary>TemplateProcessing "single": a list of special-token ids and the sequence placeholder.</summary>
internal sealed class TemplateProcessor(IReadOnlyList<int[]?> single) : IPostProcessor
{
    // Each item: the ids of a special token, or null for the sequence ($A).
    public IReadOnlyList<int[]?> Single => single;

    public void Process(List<int> ids, List<(int Start, int End)> offsets, bool add, Func<int, string?> idToToken)
    {
        if (!add) return;
        var newIds = new List<int>(ids.Count + 4);
        var newOffsets = new List<(int, int)>(ids.Count + 4);
        foreach (var item in single)
        {
            if (item == null) { newIds.AddRange(ids); newOffsets.AddRange(offsets); }
            else foreach (var id in item) { newIds.Add(id); newOffsets.Add((0, 0)); }
        }
        ids.Clear(); ids.AddRange(newIds);
        offsets.Clear(); offsets.AddRange(newOffsets);
    }
}

/// <summary>ByteLevel post-processor: with trim_offsets, offsets skip the leading/trailing spaces of each token.</summary>
internal sealed class ByteLevelProcessor(bool trimOffsets, bool addPrefixSpace) : IPostProcessor
{
    public void Process(List<int> ids, List<(int Start, int End)> offsets, bool add, Func<int, string?> idToToken)
    {
        if (!trimOffsets) return;
        for (int i = 0; i < ids.Count; i++)
        {
            var tok = idToToken(ids[i]);
            if (string.IsNullOrEmpty(tok)) continue;
            int lead = 0, trail = 0;
            while (lead < tok.Length && IsSpace(tok[lead])) lead++;
            while (trail < tok.Length - lead && IsSpace(tok[tok.Length - 1 - trail])) trail++;
            var (s, e) = offsets[i];
            if (lead > 0)
            {
                bool isFirst = i == 0 || s == 0;
                if (addPrefixSpace && isFirst && lead == 1) lead = 0;
                s = Math.Min(s + lead, e);
            }
            if (trail > 0 && e >= trail) e = Math.Max(e - trail, s);
            offsets[i] = (s, e);
        }
    }

    private static bool IsSpace(char c) => c == ByteLevelAlphabet.ByteToChar((byte)' ') || UnicodeClass.IsWhiteSpace(c);
}

/// <summary>BertProcessing / RobertaProcessing for a single sequence: [cls] A [sep].</summary>
internal sealed class ClsSepProcessor(int clsId, int sepId) : IPostProcessor
{
    public void Process(List<int> ids, List<(int Start, int End)> offsets, bool add, Func<int, string?> idToToken)
    {
        if (!add) return;
        ids.Insert(0, clsId); offsets.Insert(0, (0, 0));
        ids.Add(sepId); offsets.Add((0, 0));
    }
}
