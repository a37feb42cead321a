using System.Text;
using System.Text.RegularExpressions;

namespace InstructTune.Tokenizers;

/// <summary>A tokenizer.json decoder: a chain step from token strings to text pieces (HF decode_chain); the final
/// text is the concatenation of what the last step returns.</summary>
public interface IDecoder
{
    List<string> DecodeChain(List<string> tokens);
}

internal sealed class SequenceDecoder(IReadOnlyList<IDecoder> items) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        foreach (var d in items) tokens = d.DecodeChain(tokens);
        return tokens;
    }
}

/// <summary>ByteLevel: maps ByteLevel-alphabet characters back to bytes and decodes UTF-8 (invalid → U+FFFD). A token
/// with a character outside the alphabet (an added token such as "&lt;|im_start|&gt;" is inside it, but "é" is not) contributes
/// its own UTF-8 bytes, as HF does.</summary>
internal sealed class ByteLevelDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        Span<byte> tmp = stackalloc byte[4];
        foreach (var t in tokens)
        {
            bool all = true;
            foreach (var c in t) if (ByteLevelAlphabet.CharToByte(c) < 0) { all = false; break; }
            if (all) foreach (var c in t) bytes.Add((byte)ByteLevelAlphabet.CharToByte(c));
            else bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(t));
        }
        return [Utf8Lossy.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
    }
}

/// <summary>ByteFallback: runs of &lt;0xXX&gt; tokens become their UTF-8 text, or one U+FFFD per byte if invalid.</summary>
internal sealed class ByteFallbackDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        void Flush()
        {
            if (pending.Count == 0) return;
            var arr = pending.ToArray();
            if (Utf8Lossy.IsValid(arr)) result.Add(System.Text.Encoding.UTF8.GetString(arr));
            else for (int k = 0; k < arr.Length; k++) result.Add("\uFFFD");
            pending.Clear();
        }
        foreach (var t in tokens)
        {
            int b = ParseByteToken(t);
            if (b >= 0) { pending.Add((byte)b); continue; }
            Flush();
            result.Add(t);
        }
        Flush();
        return result;
    }

    /// <summary>"&lt;0xAB&gt;" → 0xAB, otherwise -1.</summary>
    internal static int ParseByteToken(string t)
    {
        if (t.Length != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
        return int.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out int v) ? v : -1;
    }
}

internal sealed class FuseDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Strip: removes up to `start` leading and `stop` trailing `content` characters from every token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var r = new List<string>(tokens.Count);
        foreach (var t in tokens)
        {
            int s = 0, e = t.Length;
            for (int k = 0; k < start && s < e && t[s] == content; k++) s++;
            for (int k = 0; k < stop && e > s && t[e - 1] == content; k++) e--;
            r.Add(t[s..e]);
        }
        return r;
    }
}

internal sealed class ReplaceDecoder(string? literal, Regex? regex, string content) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) =>
        tokens.Select(t => literal != null ? (literal.Length == 0 ? t : t.Replace(literal, content, StringComparison.Ordinal))
                                           : regex!.Replace(t, content.Replace("$", "$$"))).ToList();
}

/// <summary>Metaspace: ▁ → space; the first token loses its leading ▁ unless prepend_scheme is "never".</summary>
internal sealed class MetaspaceDecoder(char replacement, string prependScheme) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var r = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (i == 0 && prependScheme != "never" && t.Length > 0 && t[0] == replacement) t = t[1..];
            r.Add(t.Replace(replacement, ' '));
        }
        return r;
    }
}

/// <summary>WordPiece: continuation tokens lose their prefix, others get a space before them; optional cleanup.</summary>
internal sealed class WordPieceDecoder(string prefix, bool cleanup) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var r = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (i != 0)
            {
                if (t.StartsWith(prefix, StringComparison.Ordinal)) t = t[prefix.Length..];
                else t = " " + t;
            }
            if (cleanup) t = Cleanup(t);
            r.Add(t);
        }
        return r;
    }

    internal static string Cleanup(string s) => s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!")
        .Replace(" ,", ",").Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" do not", " don't")
        .Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}

/// <summary>BPEDecoder: the end-of-word suffix becomes a space (none after the last token).</summary>
internal sealed class BpeSuffixDecoder(string suffix) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) =>
        tokens.Select((t, i) => t.Replace(suffix, i == tokens.Count - 1 ? "" : " ")).ToList();
}

/// <summary>UTF-8 → string with invalid sequences replaced the way Rust's String::from_utf8_lossy does (one U+FFFD
/// per maximal invalid subpart), which is also what .NET's decoder does by default.</summary>
internal static class Utf8Lossy
{
    private static readonly UTF8Encoding Strict = new(false, true);

    public static string Decode(ReadOnlySpan<byte> bytes) => System.Text.Encoding.UTF8.GetString(bytes);

    public static bool IsValid(byte[] bytes)
    {
        try { Strict.GetCharCount(bytes); return true; }
        catch (DecoderFallbackException) { return false; }
    }
}
