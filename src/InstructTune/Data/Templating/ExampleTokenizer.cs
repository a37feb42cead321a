using InstructTune.Data.Records;
using InstructTune.Tokenizers;

namespace InstructTune.Data.Templating;

/// <summary>Masking and truncation settings.</summary>
/// <param name="MaxSeqLen">Longest example in tokens (0: no limit).</param>
/// <param name="TrainOnInputs">Learn every token of the text, not only the response (BOS stays unlearned).</param>
/// <param name="AddBos">Let the tokenizer add its special tokens (BOS) in front, unless the rendered text already starts with BOS.</param>
/// <param name="AppendEos">Append the tokenizer's EOS id (learned) unless the text already ends with it.</param>
public sealed record MaskOptions(int MaxSeqLen = 0, bool TrainOnInputs = false, bool AddBos = true, bool AppendEos = true);

/// <summary>
/// Text → <see cref="TokenizedExample"/>. The whole rendered text is encoded once (so tokenization is the one the
/// model will see at inference), then each token's segment is read from the characters its offsets cover: a token
/// takes the largest segment among its characters, so a token that merges template text with the first response
/// characters is a response token and is learned. Labels come from segments only, never from comparing ids, so
/// EOS stays learned when PAD = EOS.
/// Truncation keeps the response: it removes input tokens from the end of the input first, then instruction tokens,
/// and only then cuts the tail. With instruction marker tokens (model.instruction_aware.marker_tokens) every marker pair
/// stays intact: the markers are never removed, so an instruction is cut inside its markers and its closing marker
/// follows the kept part (see <see cref="Truncate"/>).
/// </summary>
public sealed class ExampleTokenizer(ITokenizer tokenizer, IPromptTemplate template, MaskOptions? options = null)
{
    private readonly MaskOptions _o = options ?? new MaskOptions();

    public MaskOptions Options => _o;

    /// <summary>The instruction marker token ids [open, close] when the template wraps instructions in markers
    /// (<see cref="PromptFormat.Markers"/>) and both are single tokens of the tokenizer; null otherwise.</summary>
    public (int Open, int Close)? MarkerIds { get; } =
        template is PromptFormat { Markers: [var open, var close] } && tokenizer.TokenToId(open) is int o && tokenizer.TokenToId(close) is int c
            ? (o, c) : null;

    public TokenizedExample Tokenize(InstructionRecord record, int taskId) => Tokenize(template.Render(record), taskId, record.Complexity, record.IsPlainText);

    public TokenizedExample Tokenize(RenderedText rendered, int taskId, int complexity = -1, bool plainText = false)
    {
        // A chat template that writes BOS itself (Llama 3's "<|begin_of_text|>") must not get a second one.
        bool textHasBos = tokenizer.BosId is int bos && tokenizer.IdToToken(bos) is { Length: > 0 } bosText && rendered.Text.StartsWith(bosText, StringComparison.Ordinal);
        var enc = tokenizer.Encode(rendered.Text, addSpecialTokens: _o.AddBos && !textHasBos);
        var charSeg = rendered.CharSegments();
        int n = enc.Ids.Length;
        var eos = tokenizer.EosId;
        bool appendEos = _o.AppendEos && eos != null && (n == 0 || enc.Ids[n - 1] != eos.Value);
        int total = n + (appendEos ? 1 : 0);
        var ids = new int[total];
        var labels = new int[total];
        var segs = new byte[total];
        for (int t = 0; t < n; t++)
        {
            var (start, end) = enc.Offsets[t];
            ids[t] = enc.Ids[t];
            Segment seg = TokenSegment(charSeg, enc.Offsets[t]);
            segs[t] = (byte)seg;
            bool zeroWidth = end <= start;   // added specials (BOS) cover no characters
            bool learned = seg == Segment.Response || ((_o.TrainOnInputs || plainText) && !(zeroWidth && t == 0));
            labels[t] = learned ? ids[t] : TokenizedExample.IgnoreIndex;
        }
        if (appendEos)
        {
            ids[n] = eos!.Value;
            labels[n] = eos.Value;
            segs[n] = (byte)Segment.Response;
        }
        var example = new TokenizedExample(ids, labels, segs, taskId, complexity);
        return _o.MaxSeqLen > 0 && total > _o.MaxSeqLen ? Truncate(example, _o.MaxSeqLen, MarkerIds) : example;
    }

    /// <summary>A token's segment: the largest among the characters its offsets cover (Template for zero-width tokens).</summary>
    public static Segment TokenSegment(Segment[] charSegments, (int Start, int End) offset)
    {
        Segment seg = Segment.Template;
        for (int c = Math.Max(0, offset.Start); c < offset.End && c < charSegments.Length; c++)
            if (charSegments[c] > seg) seg = charSegments[c];
        return seg;
    }

    /// <summary>
    /// Drops tokens to fit maxLen: input first (from its end), then instruction, then the tail. With
    /// <paramref name="markers"/> (instruction marker ids [open, close]) the markers are never removed, so a shortened
    /// instruction keeps both, its closing marker right after the kept instruction tokens, and an instruction cut away
    /// whole leaves its empty pair; a tail cut between the two markers of a pair drops the opening one too. Every marker
    /// in the result is thus paired, as at inference.
    /// </summary>
    public static TokenizedExample Truncate(TokenizedExample e, int maxLen, (int Open, int Close)? markers = null)
    {
        int excess = e.Length - maxLen;
        if (excess <= 0) return e;
        bool IsMarker(int t) => markers is { } m && (e.Ids[t] == m.Open || e.Ids[t] == m.Close);
        var keep = new bool[e.Length];
        Array.Fill(keep, true);
        foreach (var victim in new[] { Segment.Input, Segment.Instruction })
            for (int t = e.Length - 1; t >= 0 && excess > 0; t--)
                if (e.Segments[t] == (byte)victim && !IsMarker(t)) { keep[t] = false; excess--; }
        var take = new List<int>(Math.Min(e.Length, maxLen + 1));
        for (int t = 0; t < e.Length && take.Count < maxLen; t++)
            if (keep[t]) take.Add(t);
        // A tail cut comes after every instruction token went, so a wrapped instruction it reaches is an empty pair:
        // one whose closing marker falls past the cut loses its opening marker too.
        if (excess > 0 && markers is { } mk && take.Count > 0 && e.Ids[take[^1]] == mk.Open) take.RemoveAt(take.Count - 1);
        int n = take.Count;
        var ids = new int[n];
        var labels = new int[n];
        var segs = new byte[n];
        for (int k = 0; k < n; k++)
        {
            int t = take[k];
            ids[k] = e.Ids[t]; labels[k] = e.Labels[t]; segs[k] = e.Segments[t];
        }
        return e with { Ids = ids, Labels = labels, Segments = segs, TruncatedTokens = e.Length - n };
    }
}
