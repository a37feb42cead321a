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
    private readonly Dictionary<int, string> _decoded = new();

    public PrecompiledCharsmap(byte[] blob, string path)
    {
        if (blob.Length < 4) throw new TokenizerFormatException($"{path}: normalizer_spec.precompiled_charsmap is truncated");
        uint trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize % 4 != 0 || 4 + trieSize > blob.Length)
            throw new TokenizerFormatException($"{path}: normalizer_spec.precompiled_charsmap has a bad trie size {trieSize}");
        _units = new uint[trieSize / 4];
        for (int i = 0; i < _units.Length; i++) _units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + 4 * i));
        _strings = blob[(int)(4 + trieSize)..];
    }

    private static bool HasLeaf(uint u) => ((u >> 8) & 1) == 1;
    private static int Value(uint u) => (int)(u & ((1u << 31) - 1));
    private static uint Label(uint u) => u & ((1u << 31) | 0xFF);
    private static uint Offset(uint u) => (u >> 10) << (int)((u & (1u << 9)) >> 6);

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
        lock (_decoded)
        {
            if (!_decoded.TryGetValue(bestValue, out replacement))
            {
                int end = Array.IndexOf(_strings, (byte)0, bestValue);
                if (end < 0) end = _strings.Length;
                replacement = System.Text.Encoding.UTF8.GetString(_strings, bestValue, end - bestValue);
                _decoded[bestValue] = replacement;
            }
        }
        return best;
    }
}
