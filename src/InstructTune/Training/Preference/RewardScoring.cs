using InstructTune.Data.Preference;
using InstructTune.Models;
using InstructTune.Peft;
using InstructTune.Tokenizers;

namespace InstructTune.Training.Preference;

/// <summary>One scored pair (the index among the pairs kept; skipped records are counted in the stats): both rewards.</summary>
public sealed record RewardPair(int Index, double Chosen, double Rejected);

/// <summary>
/// <c>itune score --reward</c>: a trained reward model (base checkpoint, optional PEFT adapter, and the
/// reward_head.safetensors written beside the run's export) scores the completions of preference records (every pairwise
/// layout the training data accepts, rendered with the same template) and reports the pairwise accuracy.
/// </summary>
public static class RewardScoring
{
    /// <summary>Loads the model (+ adapter) and the head from the adapter folder, else the model folder.</summary>
    public static (LlamaModel Model, RewardHead Head, ITokenizer Tokenizer) Load(string modelDir, string? adapterDir)
    {
        var model = LlamaCheckpoint.Load(modelDir);
        if (adapterDir != null) PeftRegistry.LoadInto(model, adapterDir);
        var head = RewardHead.Load(adapterDir ?? modelDir, model.Config.HiddenSize);
        return (model, head, TokenizerLoader.Load(modelDir));
    }

    public static List<RewardPair> ScorePairs(LlamaModel model, RewardHead head, ITokenizer tokenizer, string path, string template,
        string tokenizerPath, int maxSeqLen, int batchPairs, out PreferenceStats stats)
    {
        int padId = tokenizer.PadId ?? tokenizer.EosId ?? 0;
        var (data, s) = PreferenceLoader.Load(path, paired: true, tokenizer, PreferenceLoader.Template(template, tokenizerPath), maxSeqLen, padId,
            scoreThreshold: 0.5, skipInvalid: false);
        stats = s;
        var result = new List<RewardPair>(data.Count);
        for (int k = 0; k < data.Count; k += batchPairs)
        {
            var items = Enumerable.Range(k, Math.Min(batchPairs, data.Count - k)).ToArray();
            var r = RewardObjective.Score(model, head, data.Collate(items));
            for (int i = 0; i < items.Length; i++) result.Add(new RewardPair(items[i], r[i], r[items.Length + i]));
        }
        return result;
    }
}
