namespace InstructTune.Tokenizers;

/// <summary>One encoded text: token ids and, for each id, the [Start, End) UTF-16 span of the input it covers.</summary>
public sealed record Encoding(int[] Ids, (int Start, int End)[] Offsets);

/// <summary>
/// What the rest of InstructTune needs from a tokenizer (tokenizer.json, tokenizer.model, or a trained one).
/// Offsets let the data pipeline place loss masks and segment ids by character span, which stays exact
/// when a tokenizer merges across the boundary between prompt and response.
/// </summary>
public interface ITokenizer
{
    int VocabSize { get; }
    int? BosId { get; }
    int? EosId { get; }
    int? PadId { get; }
    int? UnkId { get; }

    /// <summary>Encodes text; addSpecialTokens applies the post-processor (e.g. a leading BOS).</summary>
    Encoding Encode(string text, bool addSpecialTokens = false);

    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false);

    /// <summary>The id of a token string (added or in the vocabulary), or null.</summary>
    int? TokenToId(string token);

    string? IdToToken(int id);

    /// <summary>True for ids that Decode(skipSpecialTokens: true) drops (added tokens marked special, control pieces).</summary>
    bool IsSpecialToken(int id) => false;

    /// <summary>Encodes many texts on all cores; results are in input order.</summary>
    Encoding[] EncodeBatch(IReadOnlyList<string> texts, bool addSpecialTokens = false)
    {
        var result = new Encoding[texts.Count];
        Parallel.For(0, texts.Count, i => result[i] = Encode(texts[i], addSpecialTokens));
        return result;
    }
}
