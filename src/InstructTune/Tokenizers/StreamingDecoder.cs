namespace InstructTune.Tokenizers;

/// <summary>
/// Incremental decoding for generation: push ids one at a time and get back only text whose characters are
/// complete. It decodes a short window of recent ids and returns what the newest id added, holding back while the
/// window's text ends in U+FFFD (an incomplete UTF-8 sequence of byte tokens). Re-decoding a window instead of
/// single tokens keeps decoder context right: Llama's leading-space strip and ByteLevel multi-token characters.
/// Same scheme as Hugging Face tokenizers' DecodeStream.
/// </summary>
public sealed class StreamingDecoder(ITokenizer tokenizer, bool skipSpecialTokens = false)
{
    private readonly List<int> _ids = new();
    private string _prefix = "";
    private int _prefixIndex;

    /// <summary>Adds one id; returns the newly completed text, or "" when nothing is complete yet.</summary>
    public string Push(int id)
    {
        _ids.Add(id);
        var text = tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids), skipSpecialTokens);
        if (text.Length <= _prefix.Length || text.EndsWith('\uFFFD')) return "";
        // The window's text normally extends the previous one; if a decoder rewrote it, emit from the first change.
        int common = text.StartsWith(_prefix, StringComparison.Ordinal) ? _prefix.Length : CommonPrefix(text, _prefix);
        var fresh = text[common..];
        int newPrefixIndex = _ids.Count - _prefixIndex;
        _ids.RemoveRange(0, _prefixIndex);
        _prefix = tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids), skipSpecialTokens);
        _prefixIndex = newPrefixIndex;
        return fresh;
    }

    /// <summary>Text still held back at the end of generation (an incomplete character shows as U+FFFD).</summary>
    public string Flush()
    {
        var text = tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids), skipSpecialTokens);
        var rest = text.Length > _prefix.Length && text.StartsWith(_prefix, StringComparison.Ordinal) ? text[_prefix.Length..] : "";
        _ids.Clear(); _prefix = ""; _prefixIndex = 0;
        return rest;
    }

    private static int CommonPrefix(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }
}
