using InstructTune.Data.Augmentation;
using InstructTune.Data.Loading;
using InstructTune.Data.Quality;
using InstructTune.Data.Records;
using InstructTune.Templates;

namespace InstructTune.Data.Pipeline;

/// <summary>
/// The record- and token-level steps of the pipeline between loading and the shards (recipe keys under
/// <c>data.augment</c>, <c>data.quality</c>, <c>data.dedup*</c>, <c>data.system_prompt</c>). All are seeded, so a
/// prepare run is reproducible; <see cref="Key"/> enters the cache key.
/// </summary>
/// <param name="SystemPrompt">Put in front of every record that has no system message (single-turn records become chats).</param>
/// <param name="InvertShare">Share of single-turn records also added inverted (<see cref="RecordAugmenter.Invert"/>).</param>
/// <param name="Paraphrases">Groups of interchangeable instructions (<see cref="RecordAugmenter.Paraphrases"/>).</param>
/// <param name="FewShot">k positive examples in front of each SNI instance (<see cref="RecordAugmenter.FewShot"/>).</param>
/// <param name="InstructionMask">Probability of masking an instruction token (<see cref="InstructionMasking"/>).</param>
/// <param name="MaskTokenId">Token id that replaces masked tokens (mode Replace).</param>
/// <param name="Quality">Dedup settings; when null, PrepareOptions.Dedup and NearDupJaccard decide.</param>
public sealed record DataTransforms(
    string SystemPrompt = "",
    double InvertShare = 0,
    string InvertInstruction = RecordAugmenter.DefaultInversionInstruction,
    IReadOnlyList<IReadOnlyList<string>>? Paraphrases = null,
    int FewShot = 0,
    double InstructionMask = 0,
    MaskMode InstructionMaskMode = MaskMode.Replace,
    int MaskTokenId = 0,
    IReadOnlyList<QualityRule>? Rules = null,
    IReadOnlyList<IQualityScorer>? Scorers = null,
    QualityOptions? Quality = null,
    int Seed = 0,
    string Key = "")
{
    /// <summary>Record-level steps in order: system prompt, few-shot, inversion, paraphrases.</summary>
    public IEnumerable<InstructionRecord> ApplyToRecords(IEnumerable<InstructionRecord> records, Func<string, IReadOnlyList<SniExample>>? positivesOfTask = null)
    {
        var rng = new Random(Seed ^ 0x5A17);
        foreach (var r0 in records)
        {
            var r = WithSystemPrompt(r0, SystemPrompt);
            if (FewShot > 0 && positivesOfTask != null) r = RecordAugmenter.FewShot(r, positivesOfTask(r.Task), FewShot, rng);
            yield return r;
            if (InvertShare > 0 && rng.NextDouble() < InvertShare && RecordAugmenter.Invert(r0, InvertInstruction) is { } inverted)
                yield return WithSystemPrompt(inverted, SystemPrompt);
            if (Paraphrases is { Count: > 0 })
                foreach (var p in RecordAugmenter.Paraphrases(r0, Paraphrases)) yield return WithSystemPrompt(p, SystemPrompt);
        }
    }

    /// <summary>Token-level steps (instruction masking), seeded per example so parallel tokenization stays deterministic.</summary>
    public TokenizedExample ApplyToTokens(TokenizedExample e, long index) =>
        InstructionMask > 0 ? InstructionMasking.Apply(e, InstructionMask, InstructionMaskMode, MaskTokenId, new Random(HashCode.Combine(Seed, index))) : e;

    /// <summary>The record with a system message in front (a single-turn record becomes system/user/assistant), unless it has one.</summary>
    public static InstructionRecord WithSystemPrompt(InstructionRecord r, string system)
    {
        if (string.IsNullOrEmpty(system) || r.IsPlainText) return r;
        if (r.IsChat) return r.Messages!.Count > 0 && r.Messages[0].Role == "system" ? r : r with { Messages = [new ChatMessage("system", system), .. r.Messages] };
        var user = r.Input.Length > 0 ? r.Instruction + "\n\n" + r.Input : r.Instruction;
        return r with { Instruction = "", Input = "", Output = "", Messages = [new ChatMessage("system", system), new ChatMessage("user", user), new ChatMessage("assistant", r.Output)] };
    }
}
