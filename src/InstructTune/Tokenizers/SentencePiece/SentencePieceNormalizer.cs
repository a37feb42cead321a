namespace InstructTune.Tokenizers.SentencePiece;

/// <summary>
/// SentencePiece's Normalizer::Normalize with offsets: the precompiled charsmap (longest match, else the code point
/// itself), then leading spaces dropped and runs of spaces collapsed when remove_extra_whitespaces, the dummy-prefix
/// ▁ when add_dummy_prefix, spaces escaped as ▁, trailing spaces dropped. Only U+0020 counts as a space here, as in
/// SentencePiece; the charsmap is what turns tabs and other white space into it (nmt_nfkc does).
/// </summary>
internal sealed class SentencePieceNormalizer(SentencePieceModelProto proto, PrecompiledCharsmap? charsmap)
{
    private const char Meta = '\u2581';

    public NormalizedText Normalize(string input)
    {
        int n = input.Length;
        // With a charsmap, matching runs over UTF-8; byteToChar maps each byte to its UTF-16 index.
        byte[]? utf8 = null; int[]? charToByte = null;
        if (charsmap != null)
        {
            utf8 = System.Text.Encoding.UTF8.GetBytes(input);
            charToByte = new int[n + 1];
            // Input has no lone surrogates (the caller replaced them): the low surrogate carries the pair's 4 bytes, so a pair starts at its high unit's byte.
            for (int i = 0, nb = 0; i <= n; i++)
            {
                charToByte[i] = nb;
                if (i == n) break;
                char c = input[i];
                nb += c < 0x80 ? 1 : c < 0x800 ? 2 : char.IsHighSurrogate(c) ? 0 : char.IsLowSurrogate(c) ? 4 : 3;
            }
        }

        // The normalized text of the chunk at i and how many UTF-16 units it consumes.
        ReadOnlySpan<char> Chunk(int i, out int consumed)
        {
            if (charsmap != null)
            {
                if (charsmap.TryAscii(input[i], out var fixedRep))
                {
                    consumed = 1;
                    return fixedRep ?? input.AsSpan(i, 1);
                }
                int b0 = charToByte![i];
                int len = charsmap.LongestMatch(utf8.AsSpan(b0), out var rep);
                if (len > 0)
                {
                    int j = i;
                    while (j < n && charToByte[j] < b0 + len) j++;
                    if (charToByte[j] == b0 + len) { consumed = j - i; return rep; }
                }
            }
            UnicodeClass.CodePointAt(input, i, out consumed);
            return input.AsSpan(i, consumed);
        }

        var b = new NormalizedBuilder(n + 2);
        bool removeExtra = proto.RemoveExtraWhitespaces;
        int pos = 0;
        if (removeExtra)
            while (pos < n)
            {
                var c = Chunk(pos, out int k);
                if (!c.SequenceEqual(" ")) break;
                pos += k;
            }
        if (pos >= n) return b.Build();
        if (proto.AddDummyPrefix && !proto.TreatWhitespaceAsSuffix)
        {
            Chunk(pos, out int k0);
            b.Append(proto.EscapeWhitespaces ? Meta : ' ', pos, pos + k0);
        }
        bool prevSpace = removeExtra;
        while (pos < n)
        {
            var c = Chunk(pos, out int k);
            int s = 0;
            if (prevSpace) while (s < c.Length && c[s] == ' ') s++;
            if (s < c.Length)
            {
                for (int j = s; j < c.Length; j++)
                    b.Append(proto.EscapeWhitespaces && c[j] == ' ' ? Meta : c[j], pos, pos + k);
                prevSpace = c[^1] == ' ';
            }
            pos += k;
            if (!removeExtra) prevSpace = false;
        }
        if (removeExtra) b.TrimEnd(proto.EscapeWhitespaces ? Meta : ' ');
        return b.Build();
    }
}
