namespace InstructTune.Recipes.Quickstart;

/// <summary>
/// Every size and step count of the quickstart. <see cref="Default"/> is the README's run (fits ≤ 10 minutes on
/// 2 cores); <see cref="Tiny"/> is the same pipeline shrunk to seconds for tests.
/// </summary>
public sealed record QuickstartOptions
{
    public string OutDir { get; init; } = "quickstart-out";
    public int Seed { get; init; } = 42;

    // Task suite: the learnable subset (see QuickstartData.Families) at these sizes.
    public int SimplePerFamily { get; init; } = 150;
    public int CompositionPerPair { get; init; } = 30;
    public int HeldOutPerFamily { get; init; } = 20;
    /// <summary>At most this many examples per evaluated split (0 = all).</summary>
    public int EvalPerSplit { get; init; } = 0;

    // Tokenizer.
    public int VocabSize { get; init; } = 768;

    // Base model (Llama layout).
    public int Hidden { get; init; } = 128;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 4;
    public int Intermediate { get; init; } = 384;

    // Pre-training: plain LM loss on sentences derived from the suite.
    public int PretrainSteps { get; init; } = 600;
    public double PretrainLearningRate { get; init; } = 4e-3;
    public int PretrainSeqLen { get; init; } = 128;
    public int PretrainBatch { get; init; } = 8;

    // LoRA instruction tuning: response-only loss.
    public int TuneSteps { get; init; } = 900;
    public double TuneLearningRate { get; init; } = 3e-3;
    public int TuneSeqLen { get; init; } = 128;
    public int TuneBatch { get; init; } = 8;
    public int LoraRank { get; init; } = 32;
    public double LoraAlpha { get; init; } = 64;
    /// <summary>"lora" (default) or "qlora": the same adapter over an NF4-quantised frozen base.</summary>
    public string Method { get; init; } = "lora";
    /// <summary>training.precision of both training stages: "float32" (default) or "bf16" (mixed precision).</summary>
    public string Precision { get; init; } = "float32";

    public int MaxNewTokens { get; init; } = 16;

    // Optional feedback stage after instruction tuning (QuickstartPreference): "" = off, "dpo" = DPO on pairs built
    // from the suite (correct answer chosen, a wrong one rejected), a fresh LoRA over the merged SFT model.
    public string Preference { get; init; } = "";
    /// <summary>"own_mistakes" (rejected = the SFT model's greedy answer when wrong, else its likeliest wrong answer of
    /// another input; training prompts are fresh inputs in all four phrasings) or "other_answer" (rejected = another
    /// input's answer; training prompts = the train split).</summary>
    public string DpoRejected { get; init; } = "own_mistakes";
    /// <summary>Fresh training prompts per family for "own_mistakes".</summary>
    public int DpoTrainPerFamily { get; init; } = 200;
    public int DpoSteps { get; init; } = 150;
    public double DpoLearningRate { get; init; } = 3e-4;
    public double DpoBeta { get; init; } = 0.1;

    public static QuickstartOptions Default { get; } = new();

    /// <summary>Seconds, not minutes: a test of the plumbing, not of the scores.</summary>
    public static QuickstartOptions Tiny { get; } = new()
    {
        SimplePerFamily = 12, CompositionPerPair = 2, HeldOutPerFamily = 2, EvalPerSplit = 6,
        VocabSize = 300, Hidden = 32, Layers = 1, Heads = 2, Intermediate = 64,
        PretrainSteps = 3, PretrainSeqLen = 64, PretrainBatch = 2,
        TuneSteps = 3, TuneSeqLen = 64, TuneBatch = 2, LoraRank = 4, LoraAlpha = 8, MaxNewTokens = 4,
    };

    /// <summary>Applies the properties named in a JSON file over <paramref name="preset"/>; unknown names are refused with the file named.</summary>
    public static QuickstartOptions Overlay(QuickstartOptions preset, string jsonPath)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(jsonPath)) as System.Text.Json.Nodes.JsonObject
            ?? throw new InvalidDataException($"{jsonPath}: expected a JSON object of QuickstartOptions properties");
        var merged = System.Text.Json.JsonSerializer.SerializeToNode(preset)!.AsObject();
        foreach (var (key, value) in node)
        {
            if (!merged.ContainsKey(key)) throw new InvalidDataException($"{jsonPath}: unknown quickstart option '{key}' (expected one of {string.Join(", ", merged.Select(p => p.Key))})");
            merged[key] = value?.DeepClone();
        }
        try { return System.Text.Json.JsonSerializer.Deserialize<QuickstartOptions>(merged)!; }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{jsonPath}: {e.Message}"); }
    }
}
