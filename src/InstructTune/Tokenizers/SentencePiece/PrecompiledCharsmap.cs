using System.Buffers.Binary;


namespace InstructTune.Tokenizers.SentencePiece;

/// <summary>
/// SentencePiece's precompiled normalization map (normalizer_spec.precompiled_charsmap, e.g. nmt_nfkc): a uint32
/// little-endian trie size, a darts-clone double-array trie over UTF-8 keys, then NUL-terminated replacement strings
/// addressed by the trie's values. <see cref="LongestMatch"/> is darts-clone's commonPrefixSearch keeping the
/// longest key, which is what SentencePiece's Normalizer::NormalizePrefix uses.
/// </summary>
internal sealed class PrecompiledCharsmap
{
    private readonly uint[] _units;
    private readonly byte[] _strings;
    private readonly string?[] _decoded; // replacement string by its offset in _strings, decoded on first use

    public PrecompiledCharsmap(byte[] blob, string path)
    {
        if (blob.Length < 4) throw new TokenizerFormatException($"{path}: normalizer_spec.precompiled_charsmap is truncated");
        uint trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize % 4 != 0 || 4 + trieSize > blob.Length)
            throw new TokenizerFormatException($"{path}: normalizer_spec.precompiled_charsmap has a bad trie size {trieSize}");
        _units = new uint[trieSize / 4];
        for (int i = 0; i < _units.Length; i++) _units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + 4 * i));
        _strings = blob[(int)(4 + trieSize)..];
        _decoded = new string?[_strings.Length + 1];
        for (int b = 0; b < 128; b++)
            if (_asciiFixed[b] = IsFixed((byte)b)) LongestMatch([(byte)b], out _asciiRep[b]);
    }

    private static bool HasLeaf(uint u) => ((u >> 8) & 1) == 1;
    private static int Value(uint u) => (int)(u & ((1u << 31) - 1));
    private static uint Label(uint u) => u & ((1u << 31) | 0xFF);
    private static uint Offset(uint u) => (u >> 10) << (int)((u & (1u << 9)) >> 6);

    private readonly bool[] _asciiFixed = new bool[128];
    private readonly string?[] _asciiRep = new string?[128];

    /// <summary>True when no key longer than one byte starts with the ASCII character c, so that its match (the
    /// one-byte key, or none) does not depend on what follows: <paramref name="replacement"/> is then that key's
    /// replacement or null. Lets the normalizer skip the UTF-8 walk for most ASCII text.</summary>
    public bool TryAscii(char c, out string? replacement)
    {
        if (c >= 128 || !_asciiFixed[c]) { replacement = null; return false; }
        replacement = _asciiRep[c];
        return true;
    }

    // No transition leaves the node reached by b (byte 0 included: it would be the leaf's value cell).
    private bool IsFixed(byte b)
    {
        if (_units.Length == 0) return true;
        uint pos = Offset(_units[0]) ^ b;
        if (pos >= _units.Length || Label(_units[pos]) != b) return true;
        uint next = pos ^ Offset(_units[pos]);
        for (uint x = 1; x < 256; x++)
        {
            uint q = next ^ x;
            if (q < _units.Length && Label(_units[q]) == x) return false;
        }
        return true;
    }

    /// <summary>Longest key that is a prefix of key: its byte length and replacement, or length 0.</summary>
    public int LongestMatch(ReadOnlySpan<byte> key, out string? replacement)
    {
        replacement = null;
        if (_units.Length == 0) return 0;
        int best = 0, bestValue = -1;
        uint pos = Offset(_units[0]);
        for (int i = 0; i < key.Length; i++)
        {
            pos ^= key[i];
            if (pos >= _units.Length) break;
            uint unit = _units[pos];
            if (Label(unit) != key[i]) break;
            pos ^= Offset(unit);
            if (HasLeaf(unit) && pos < _units.Length) { best = i + 1; bestValue = Value(_units[pos]); }
        }
        if (best == 0) return 0;
        if ((uint)bestValue > (uint)_strings.Length)
            throw new TokenizerFormatException($"normalizer_spec.precompiled_charsmap: replacement offset {bestValue} is past the strings ({_strings.Length} bytes)");
        // No lock: a race decodes the same immutable string twice and either reference is kept.
        replacement = _decoded[bestValue];
        if (replacement == null)
        {
            int end = Array.IndexOf(_strings, (byte)0, bestValue);
            if (end < 0) end = _strings.Length;
            _decoded[bestValue] = replacement = System.Text.Encoding.UTF8.GetString(_strings, bestValue, end - bestValue);
        }
        return best;
    }
}
