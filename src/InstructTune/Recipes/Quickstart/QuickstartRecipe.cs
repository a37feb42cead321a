using System.Diagnostics;
using InstructTune.Data.Records;
using InstructTune.Data.TaskSuite;
using InstructTune.Data.Templating;
using InstructTune.Models;
using InstructTune.Tokenizers;
using InstructTune.Tokenizers.Training;
using InstructTune.Training.Config;

namespace InstructTune.Recipes.Quickstart;

/// <summary>What a quickstart run produced: scores before/after, loss curves, stage times and where the files are.</summary>
public sealed record QuickstartResult(QuickstartScores Before, QuickstartScores After,
    IReadOnlyList<(int Step, double Loss)> PretrainCurve, IReadOnlyList<(int Step, double Loss)> TuneCurve,
    IReadOnlyDictionary<string, double> StageSeconds, IReadOnlyDictionary<string, int> SplitSizes, double Minutes,
    string OutDir, string ResultsPath, string ReportPath);

/// <summary>
/// The end-to-end quickstart, offline and seeded: task suite → byte-level BPE tokenizer → small Llama pre-trained
/// with plain LM loss on sentences stating the suite's facts (saved in HF layout under out/base) → LoRA instruction
/// tuning on the suite's train split with response-only loss (PEFT adapter in out/adapter) → greedy exact match
/// before and after on held-out examples, phrasings and compositions → out/results.json and out/report.html.
/// </summary>
public static class QuickstartRecipe
{
    /// <summary>
    /// Compact prompt (short prompts are most of the token budget). The answer is trained as " " + output
    /// (<see cref="QuickstartData.WithLeadingSpace"/>), like every word of the pre-training sentences: byte-level BPE
    /// gives " WATER" and "WATER" different ids, and only the space-prefixed one carries what the base learned.
    /// </summary>
    public const string PromptFormat = "{instruction}\nInput: {input}\nAnswer:{output}";

    public static QuickstartResult Run(QuickstartOptions o, IQuickstartProgress progress)
    {
        // Options of the optional DPO stage are checked before any work.
        if (o.Preference.Length > 0 && !o.Preference.Equals("dpo", StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"quickstart option Preference: '{o.Preference}' is not \"dpo\" (or empty for none)");
        if (o.Preference.Length > 0 && o.DpoRejected is not ("own_mistakes" or "other_answer"))
            throw new InvalidDataException($"quickstart option DpoRejected: '{o.DpoRejected}' is not own_mistakes or other_answer");
        var total = Stopwatch.StartNew();
        var clock = Stopwatch.StartNew();
        var seconds = new Dictionary<string, double>();
        void Lap(string stage) { seconds[stage] = Math.Round(clock.Elapsed.TotalSeconds, 2); clock.Restart(); }
        var outDir = Path.GetFullPath(o.OutDir);
        Directory.CreateDirectory(outDir);

        // 1. The built-in task suite (seeded), restricted to the learnable subset.
        var suite = TaskSuiteGenerator.Generate(new TaskSuiteOptions(o.Seed, o.SimplePerFamily, ConditionalPerPair: 0,
            CompositionPerPair: o.CompositionPerPair, HeldOutPerFamily: o.HeldOutPerFamily, HeldOutPerPair: Math.Max(1, o.HeldOutPerFamily / 5)));
        var subset = QuickstartData.Subset(suite);
        TaskSuiteGenerator.Write(subset, Path.Combine(outDir, "suite"));
        var train = subset.Where(s => s.Split == SuiteSplit.Train).ToList();
        var evalSplits = QuickstartData.EvalSplits.ToDictionary(s => s, s =>
        {
            var rows = subset.Where(x => x.Split == s).ToList();
            return o.EvalPerSplit > 0 ? Spread(rows, o.EvalPerSplit) : rows;
        });
        var sizes = evalSplits.ToDictionary(kv => kv.Key, kv => kv.Value.Count);
        sizes[SuiteSplit.Train] = train.Count;
        progress.Say($"task suite: {train.Count} train examples of {QuickstartData.Families.Count} families ({string.Join(", ", QuickstartData.Families)}); "
            + string.Join(", ", evalSplits.Select(kv => $"{kv.Key} {kv.Value.Count}")));
        Lap("suite");

        // 2. Tokenizer on the pre-training sentences and the instruction texts.
        var template = new FormatStringTemplate(PromptFormat);
        var pretrainText = QuickstartData.PretrainText(subset);
        var bpe = new BpeTrainerOptions(o.VocabSize);
        var tokenizerDir = Path.Combine(outDir, "tokenizer");
        var lines = pretrainText.Select(r => r.Output).Concat(train.Select(s => template.Render(QuickstartData.WithLeadingSpace(s.Record)).Text));
        ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(lines, bpe), bpe, tokenizerDir);
        var tokenizer = TokenizerLoader.Load(tokenizerDir);
        progress.Say($"tokenizer: byte-level BPE, {tokenizer.VocabSize} tokens → {tokenizerDir}");
        Lap("tokenizer");

        // 3. Base model: random init, plain LM loss on sentences (no instruction format), saved in HF layout.
        var taskNames = QuickstartData.Families.ToList();
        var config = ModelConfig(o, tokenizer);
        var model = new LlamaModel(config);
        model.InitializeWeights((ulong)o.Seed);
        var lm = new ExampleTokenizer(tokenizer, template, new MaskOptions(o.PretrainSeqLen));
        var pretrainExamples = pretrainText.Select(r => lm.Tokenize(r, taskNames.IndexOf(r.Task))).ToList();
        progress.Say($"pre-training a {config.NumHiddenLayers}-layer, hidden-{config.HiddenSize} Llama ({Parameters(model):N0} parameters) "
            + $"on {pretrainExamples.Count} sentences, {o.PretrainSteps} steps");
        var pretrainConfig = TrainConfigFor(o, TuningMethod.Full, Path.Combine(outDir, "runs", "pretrain"), o.PretrainSteps,
            o.PretrainLearningRate, o.PretrainSeqLen, o.PretrainBatch);
        pretrainConfig.Loss.NextTokenWeight = 1;
        pretrainConfig.Loss.LambdaInstruction = 0;
        var pretrain = FineTuneRecipe.FromInputs(pretrainConfig, new TrainingInputs(model, pretrainExamples, [], PadId(tokenizer), taskNames))
            .Train(r => progress.Step("pretrain", r.Step, o.PretrainSteps, r.Loss), quiet: true);
        var baseDir = Path.Combine(outDir, "base");
        LlamaCheckpoint.Save(model, baseDir);
        foreach (var f in Directory.GetFiles(tokenizerDir)) File.Copy(f, Path.Combine(baseDir, Path.GetFileName(f)), overwrite: true);
        progress.Say($"base model: final LM loss {pretrain.FinalLoss:F3} → {baseDir}");
        Lap("pretrain");

        // 4. LoRA instruction tuning on the train split, response-only loss, from the saved base.
        var tuneModel = LlamaCheckpoint.Load(baseDir);
        var sft = new ExampleTokenizer(tokenizer, template, new MaskOptions(o.TuneSeqLen));
        TokenizedExample Tokenize(SuiteExample s) =>
            sft.Tokenize(QuickstartData.WithLeadingSpace(s.Record), Math.Max(0, taskNames.IndexOf(QuickstartData.FamiliesOf(s.Record.Task)[0])));
        var tuneExamples = train.Select(Tokenize).ToList();
        // The held-out examples' response loss of the final adapter (eval_loss of the last step): a final loss that
        // does not swing with the last few training batches.
        var heldOutExamples = evalSplits[SuiteSplit.HeldOutExamples].Select(Tokenize).ToList();
        progress.Say($"LoRA tuning (r={o.LoraRank}, alpha={o.LoraAlpha}, all seven projections) on {tuneExamples.Count} examples, {o.TuneSteps} steps");
        var method = o.Method.ToLowerInvariant() switch
        {
            "lora" => TuningMethod.Lora,
            "qlora" => TuningMethod.Qlora,
            _ => throw new InvalidDataException($"quickstart option Method: '{o.Method}' is not lora or qlora"),
        };
        var tuneConfig = TrainConfigFor(o, method, Path.Combine(outDir, "runs", "tune"), o.TuneSteps,
            o.TuneLearningRate, o.TuneSeqLen, o.TuneBatch);
        tuneConfig.Lora.Rank = o.LoraRank;
        tuneConfig.Lora.Alpha = o.LoraAlpha;
        tuneConfig.Eval.EverySteps = o.TuneSteps;
        // The adapter records its prompt format (instructtune.json), so eval, generate, serve and `synth --endpoint
        // local:base+adapter` format prompts as it was tuned without being told; the base records none (it was
        // pre-trained on plain sentences: raw text is its format).
        var prompt = InstructTune.Data.Templating.PromptFormat.Resolve(PromptFormat, null).ToRecord(tokenizer);
        var tune = FineTuneRecipe.FromInputs(tuneConfig, new TrainingInputs(tuneModel, tuneExamples, heldOutExamples, PadId(tokenizer), taskNames, baseDir,
                Prompt: prompt))
            .Train(r => progress.Step("tune", r.Step, o.TuneSteps, r.Loss), quiet: true);
        var adapterDir = Path.Combine(outDir, "adapter");
        CopyFolder(tune.ExportDir, adapterDir);
        progress.Say($"adapter: final response loss {tune.FinalLoss:F3}, held-out examples {tune.ValidationLoss:F3} → {adapterDir}");
        Lap("tune");

        // 5. Greedy exact match before and after.
        var before = QuickstartEvaluation.Run(baseDir, null, tokenizer, template, evalSplits, o.MaxNewTokens);
        var after = QuickstartEvaluation.Run(baseDir, adapterDir, tokenizer, template, evalSplits, o.MaxNewTokens);
        foreach (var s in QuickstartData.EvalSplits)
            progress.Say($"  {s,-22} exact match {before.ExactMatch[s]:F3} → {after.ExactMatch[s]:F3}");
        progress.Say($"  {"(single-family only)",-22} exact match {QuickstartOutputs.SimpleExactMatch(before):F3} → {QuickstartOutputs.SimpleExactMatch(after):F3}");
        Lap("eval");

        // 5b. Optional feedback tuning of the instruction-tuned model (DPO), measured on held-out pairs and examples.
        if (o.Preference.Equals("dpo", StringComparison.OrdinalIgnoreCase))
        {
            var heldOut = new[] { SuiteSplit.HeldOutExamples, SuiteSplit.HeldOutPhrasings }
                .ToDictionary(s => s, s => evalSplits[s].Where(x => x.Record.Complexity == 0).ToList());
            QuickstartPreference.Run(o, tuneModel, tokenizer, template, subset, train.Where(s => s.Record.Complexity == 0).ToList(),
                heldOut, tokenizerDir, outDir, progress);
            Lap("dpo");
        }

        // 6. results.json and report.html.
        var resultsPath = Path.Combine(outDir, "results.json");
        var reportPath = Path.Combine(outDir, "report.html");
        var result = new QuickstartResult(before, after, pretrain.LossCurve, tune.LossCurve, seconds, sizes,
            total.Elapsed.TotalMinutes, outDir, resultsPath, reportPath);
        QuickstartOutputs.WriteResults(result, o, config, resultsPath);
        QuickstartOutputs.WriteReport(result, o, reportPath);
        QuickstartOutputs.WriteSamples(result, Path.Combine(outDir, "samples.jsonl"));
        progress.Say($"done in {result.Minutes:F2} min; report: {reportPath}");
        return result;
    }

    public static LlamaConfig ModelConfig(QuickstartOptions o, ITokenizer tokenizer) => new()
    {
        VocabSize = tokenizer.VocabSize,
        HiddenSize = o.Hidden,
        IntermediateSize = o.Intermediate,
        NumHiddenLayers = o.Layers,
        NumAttentionHeads = o.Heads,
        NumKeyValueHeads = o.Heads,
        MaxPositionEmbeddings = Math.Max(o.PretrainSeqLen, o.TuneSeqLen) + o.MaxNewTokens + 64,
        RmsNormEps = 1e-5,
        TieWordEmbeddings = true,
        BosTokenId = tokenizer.BosId,
        EosTokenIds = tokenizer.EosId is int e ? [e] : [],
        PadTokenId = tokenizer.PadId,
    };

    private static TrainConfig TrainConfigFor(QuickstartOptions o, TuningMethod method, string runDir, int steps, double lr, int seqLen, int batch)
    {
        var c = new TrainConfig();
        c.Training.Method = method;
        c.Training.Precision = o.Precision.ToLowerInvariant() switch
        {
            "float32" => TrainingPrecision.Float32,
            "bf16" => TrainingPrecision.Bf16,
            _ => throw new InvalidDataException($"quickstart option Precision: '{o.Precision}' is not float32 or bf16"),
        };
        c.Training.MaxSteps = steps;
        c.Training.MicroBatchSize = batch;
        c.Training.LearningRate = lr;
        c.Training.WarmupSteps = Math.Min(20, steps / 10);
        c.Training.LrScheduler = LrSchedule.Cosine;
        c.Training.Seed = o.Seed;
        c.Data.MaxSeqLen = seqLen;
        c.Data.Pack = true;
        c.Checkpoint.OutputDir = runDir;
        c.Checkpoint.SaveEverySteps = 0;
        c.Checkpoint.KeepLast = 1;
        c.Logging.TensorBoard = false;
        return c;
    }

    private static int PadId(ITokenizer t) => t.PadId ?? t.EosId ?? 0;

    private static long Parameters(LlamaModel m) => m.NamedParameters().Sum(p => (long)p.Parameter.Span.Length);

    /// <summary>Every k-th row so a capped split still covers all its tasks.</summary>
    private static List<SuiteExample> Spread(List<SuiteExample> rows, int n)
    {
        if (rows.Count <= n) return rows;
        return Enumerable.Range(0, n).Select(i => rows[(int)((long)i * rows.Count / n)]).ToList();
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
    }
}
