namespace InstructTune.Tokenizers;

/// <summary>A tokenizer.json post-processor for a single sequence: adds special tokens (when asked) and may adjust
/// offsets. Special tokens get the empty offset (0, 0), as in HF.</summary>
public interface IPostProcessor
{
    void Process(List<int> ids, List<(int Start, int End)> offsets, bool addSpecialTokens, Func<int, string?> idToToken, string text);
}

internal sealed class SequenceProcessor(IReadOnlyList<IPostProcessor> items) : IPostProcessor
{
    public IReadOnlyList<IPostProcessor> Items => items;

    public void Process(List<int> ids, List<(int Start, int End)> offsets, bool add, Func<int, string?> idToToken, string text)
    {
        foreach (var p in items) p.Process(ids, offsets, add, idToToken, text);
    }
}

/// <summary>TemplateProcessing "single": a list of special-token ids and the sequence placeholder.</summary>
internal sealed class TemplateProcessor(IReadOnlyList<int[]?> single) : IPostProcessor
{
    // Each item: the ids of a special token, or null for the sequence ($A).
    public IReadOnlyList<int[]?> Single => single;

    public void Process(List<int> ids, List<(int Start, int End)> offsets, bool add, Func<int, string?> idToToken, string text)
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
    public void Process(List<int> ids, List<(int Start, int End)> offsets, bool add, Func<int, string?> idToToken, string text)
    {
        if (!trimOffsets) return;
        for (int i = 0; i < ids.Count; i++)
        {
            var tok = idToToken(ids[i]);
            if (string.IsNullOrEmpty(tok)) continue;
            int lead = 0, trail = 0;
            // Counted independently, as HF does: a token of spaces only counts them as leading and trailing.
            while (lead < tok.Length && IsSpace(tok[lead])) lead++;
            while (trail < tok.Length && IsSpace(tok[tok.Length - 1 - trail])) trail++;
            var (s, e) = offsets[i];
            if (lead > 0)
            {
                bool isFirst = i == 0 || s == 0;
                if (addPrefixSpace && isFirst && lead == 1) lead = 0;
                s = Math.Min(MoveBytes(text, s, lead), e);
            }
            if (trail > 0 && e >= trail) e = Math.Max(MoveBytes(text, e, -trail), s);
            offsets[i] = (s, e);
        }
    }

    /// <summary>HF trims in UTF-8 bytes and then maps a byte offset inside a character to that character's start;
    /// a prefix space aligned with "é" or "𝐀" therefore trims to an empty span. Moves pos by delta bytes.</summary>
    private static int MoveBytes(string text, int pos, int delta)
    {
        if (delta > 0)
        {
            while (delta > 0 && pos < text.Length)
            {
                int cp = UnicodeClass.CodePointAt(text, pos, out int n);
                int len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
                if (delta < len) break;      // lands inside this character: its start
                delta -= len; pos += n;
            }
            return pos;
        }
        delta = -delta;
        while (delta > 0 && pos > 0)
        {
            int k = pos - 1;
            if (char.IsLowSurrogate(text[k]) && k > 0 && char.IsHighSurrogate(text[k - 1])) k--;
            int cp = UnicodeClass.CodePointAt(text, k, out _);
            int len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            pos = k;                         // inside or at the start of this character: its start
            delta -= Math.Min(delta, len);
        }
        return pos;
    }

    private static bool IsSpace(char c) => c == ByteLevelAlphabet.ByteToChar((byte)' ') || UnicodeClass.IsWhiteSpace(c);
}

/// <summary>BertProcessing / RobertaProcessing for a single sequence: [cls] A [sep].</summary>
internal sealed class ClsSepProcessor(int clsId, int sepId) : IPostProcessor
{
    public void Process(List<int> ids, List<(int Start, int End)> offsets, bool add, Func<int, string?> idToToken, string text)
    {
        if (!add) return;
        ids.Insert(0, clsId); offsets.Insert(0, (0, 0));
        ids.Add(sepId); offsets.Add((0, 0));
    }
}
