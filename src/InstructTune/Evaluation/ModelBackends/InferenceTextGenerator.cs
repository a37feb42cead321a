using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Tokenizers;

namespace InstructTune.Evaluation.ModelBackends;

/// <summary>Decoding settings for evaluation: greedy unless a temperature is given, so reports are reproducible.</summary>
public sealed record EvalGenerationSettings
{
    public int MaxNewTokens { get; init; } = 128;
    /// <summary>Text that ends a completion; the completion is cut before the first one.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// <summary>Prompts decoded together in one <see cref="Generator.Generate"/> call.</summary>
    public int BatchSize { get; init; } = 8;
    public double Temperature { get; init; }
    /// <summary>Sampling filters as <c>itune generate</c> has them (0 / 1 / 1 = off).</summary>
    public int TopK { get; init; }
    public double TopP { get; init; } = 1.0;
    public double RepetitionPenalty { get; init; } = 1.0;
    public int Seed { get; init; }
}

/// <summary>
/// <see cref="ITextGenerator"/> over an <see cref="InferenceModel"/>: each prompt is formatted
/// (<see cref="PromptFormatter"/>), tokenized, generated in batches with the KV cache, stopped at EOS (the config's
/// eos ids and the tokenizer's) or a stop string, and decoded without special tokens. A prompt too long for
/// max_position_embeddings keeps its last tokens (few-shot prompts lose their oldest examples first) so that at
/// least one token can be generated.
/// </summary>
public sealed class InferenceTextGenerator(InferenceModel model, ITokenizer tokenizer, PromptFormatter formatter,
    EvalGenerationSettings settings) : ITextGenerator
{
    /// <summary>Prompts generated for so far, and how many of them were cut to fit.</summary>
    public int Prompts { get; private set; }
    public int TruncatedPrompts { get; private set; }

    public IReadOnlyList<string> Generate(IReadOnlyList<string> prompts, CancellationToken cancellationToken = default) =>
        GenerateWith(prompts, PromptIds, cancellationToken, model.ReadsSegments ? (i, ids) => PromptSegments(prompts[i], ids) : null);

    // A prompt is the instruction: its tokens' segments as training gives them, for models that read them (instruction-aware
    // variants, iPEFT, IAPT, HINT — HINT takes the instruction out and needs to know which tokens it is).
    private byte[]? PromptSegments(string prompt, int[] ids) =>
        formatter.PromptSegments(new Data.Records.InstructionRecord(prompt, "", "", "eval"), tokenizer, ids);

    /// <summary>Completions of dataset records (or chat histories as records) formatted with
    /// <see cref="PromptFormatter.Format(Data.Records.InstructionRecord)"/>: the model sees each record's prompt, and
    /// models that read segments get its tokens' segments as training gave them
    /// (<see cref="PromptFormatter.PromptSegments"/>).</summary>
    public IReadOnlyList<string> GenerateRecords(IReadOnlyList<Data.Records.InstructionRecord> records, CancellationToken cancellationToken = default)
    {
        return GenerateWith(records.Select(formatter.Format).ToList(), FormattedPromptIds, cancellationToken,
            model.ReadsSegments ? (i, ids) => formatter.PromptSegments(records[i], tokenizer, ids) : null);
    }

    private List<string> GenerateWith(IReadOnlyList<string> prompts, Func<string, int[]> encode, CancellationToken cancellationToken,
        Func<int, int[], byte[]?>? segmentsOf = null)
    {
        var options = Options();
        Prompts += prompts.Count;
        var outputs = new List<string>(prompts.Count);
        int batch = Math.Max(1, settings.BatchSize);
        for (int start = 0; start < prompts.Count; start += batch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = prompts.Skip(start).Take(batch).ToList();
            var ids = chunk.Select(encode).ToList();
            var segments = segmentsOf == null ? null : chunk.Select((_, i) => segmentsOf(start + i, ids[i])).ToList();
            if (model.TakesInstructionOut && (segments == null || segments.Any(x => x == null)))
                throw new ArgumentException($"a HINT adapter takes the instruction out of the prompt, and the prompt format {formatter.Describe()} "
                    + "cannot say which prompt tokens are the instruction; use a prompt template (--template alpaca, chatml, llama3, chat, or the format the adapter was trained with)");
            foreach (var r in Generator.Generate(model, ids, options, segments))
                outputs.Add(CutAtStop(tokenizer.Decode(r.GeneratedIds, skipSpecialTokens: true), settings.StopStrings));
        }
        return outputs;
    }

    /// <summary>The token ids the model is given for one prompt (formatted, encoded, left-truncated to fit).</summary>
    public int[] PromptIds(string prompt) => FormattedPromptIds(formatter.Format(prompt));

    /// <summary>The token ids of an already formatted prompt (encoded, left-truncated to fit).</summary>
    public int[] FormattedPromptIds(string formatted)
    {
        var ids = tokenizer.Encode(formatted, formatter.AddSpecialTokens).Ids;
        if (ids.Length == 0 && tokenizer.BosId is { } bos) ids = [bos];
        if (ids.Length == 0) throw new ArgumentException("a prompt encodes to no tokens and the tokenizer has no BOS");
        int room = model.RealPositions - Math.Max(1, Math.Min(settings.MaxNewTokens, model.RealPositions / 2));
        if (ids.Length <= room) return ids;
        TruncatedPrompts++;
        return ids[^room..];
    }

    public GenerationOptions Options() => new()
    {
        MaxNewTokens = settings.MaxNewTokens,
        Temperature = settings.Temperature,
        TopK = settings.TopK,
        TopP = settings.TopP,
        RepetitionPenalty = settings.RepetitionPenalty,
        Seed = settings.Seed,
        StopTokenIds = StopIds(model, tokenizer),
        StopStrings = settings.StopStrings,
        Decode = settings.StopStrings.Count > 0 ? ids => tokenizer.Decode(ids.ToArray(), skipSpecialTokens: true) : null,
    };

    /// <summary>End-of-sequence ids: the config's (generation_config/config eos) and the tokenizer's EOS.</summary>
    public static IReadOnlyList<int> StopIds(InferenceModel model, ITokenizer tokenizer) =>
        model.Config.EosTokenIds.Concat(tokenizer.EosId is { } e ? [e] : []).Distinct().ToArray();

    /// <summary>Cuts text before the earliest occurrence of any stop string (the generator stops after it).</summary>
    public static string CutAtStop(string text, IReadOnlyList<string> stops)
    {
        int cut = text.Length;
        foreach (var s in stops)
        {
            if (s.Length == 0) continue;
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && at < cut) cut = at;
        }
        return text[..cut];
    }
}
