using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Evaluation.MultiTurn;
using InstructTune.Evaluation.Robustness;
using InstructTune.Serving;
using InstructTune.Generation;
using InstructTune.Reports;

namespace InstructTune.Evaluation.Run;

/// <summary>What <c>itune eval run</c> was asked to do.</summary>
public sealed record EvalRunRequest(string DataPath, string OutDir)
{
    public string? Format { get; init; }
    public string? Fields { get; init; }
    /// <summary>The entry of a dataset_info.json to read.</summary>
    public string? Dataset { get; init; }
    /// <summary>The split of a Hugging Face Parquet folder (default train).</summary>
    public string? Split { get; init; }
    public string? ModelDir { get; init; }
    public string? AdapterDir { get; init; }
    /// <summary>JSONL of <c>{"id", "prediction"}</c>: scored as given, no generation.</summary>
    public string? PredictionsPath { get; init; }
    public string? Template { get; init; }
    public EvalGenerationSettings Generation { get; init; } = new();
    public int Limit { get; init; }
    public int Seed { get; init; }
    public bool Stem { get; init; }
    /// <summary>Text put before each reference (and option) when it is scored, lm-eval's target_delimiter.</summary>
    public string ReferencePrefix { get; init; } = "";
    /// <summary>Start over in an output folder that holds a run with other settings.</summary>
    public bool Force { get; init; }
    /// <summary>Add the multi-turn coherence section (<see cref="CoherenceEvaluator"/>) over the data's conversations
    /// with two or more assistant turns.</summary>
    public bool MultiTurn { get; init; }
    /// <summary>Checkpoint whose mean-pooled hidden states embed texts for contextual relevance (default: the
    /// evaluated model without its adapter, so base and tuned runs share one embedder).</summary>
    public string? EmbedModel { get; init; }
    /// <summary>Add the robustness-to-paraphrase section over this many single-turn examples (spread evenly; 0 = off).</summary>
    public int Robustness { get; init; }
    /// <summary>Rewrites per instruction besides the original (and the back-translation).</summary>
    public int Paraphrases { get; init; } = 4;
    /// <summary>Chat endpoint for back-translation: <c>local:DIR[+ADAPTER]</c> or an OpenAI-compatible URL (null = none).</summary>
    public string? BackTranslate { get; init; }
    /// <summary>Model name at a remote back-translation endpoint.</summary>
    public string? BackTranslateModel { get; init; }
    /// <summary>Environment variable holding the back-translation endpoint's API key (never logged or written).</summary>
    public string? BackTranslateKeyEnv { get; init; }
    public string Pivot { get; init; } = "French";
    /// <summary>Training file the shot examples come from; sets on the zero-/few-shot and cross-task section (null = off).</summary>
    public string? ShotsFrom { get; init; }
    public IReadOnlyList<int> Shots { get; init; } = [0, 1, 2, 4, 8];
    /// <summary>Evaluated examples in the shot curves (spread evenly).</summary>
    public int ShotsLimit { get; init; } = 50;
}

/// <summary>
/// The <c>itune eval run</c> recipe: load the file (<see cref="EvalData"/>), sample <c>--limit</c> examples evenly,
/// then for each batch of examples not yet in <c>out/predictions.jsonl</c>: format the prompts
/// (<see cref="PromptFormatter"/>), generate them together (<see cref="Generator"/>: one KV cache per sequence, one
/// forward pass per step for the whole batch), score the reference and the options (<see cref="ContinuationScorer"/>),
/// compute the text metrics (<see cref="ExampleMetrics"/>) and append the lines, flushed, so a killed run resumes where
/// it stopped. With <c>--predictions</c> the given outputs are scored instead of generated. At the end the predictions
/// are rewritten in data order and <see cref="EvalRunReport"/> writes results.json, summary.md and report.html.
/// </summary>
public static class EvalRunRecipe
{
    public const string PredictionsFile = "predictions.jsonl", SettingsFile = "run.json";

    public sealed record Outcome(JsonObject Results, int Examples, int Resumed, double Seconds);

    public static Outcome Run(EvalRunRequest request, Action<string>? log = null, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        if (request.ModelDir is null && request.PredictionsPath is null)
            throw new EvalInputException("give --model DIR to generate, or --predictions FILE to score given outputs");
        if (request.Limit < 0) throw new EvalInputException($"--limit {request.Limit}: must be ≥ 0");
        if (request.Robustness < 0) throw new EvalInputException($"--robustness {request.Robustness}: must be ≥ 0");
        if (request.Generation.MaxNewTokens < 1) throw new EvalInputException("--max-new-tokens must be ≥ 1");
        if (request.Generation.BatchSize < 1) throw new EvalInputException("--batch-size must be ≥ 1");
        var data = EvalData.Load(request.DataPath, request.Format, request.Fields, request.Dataset, request.Split);
        if (data.Rejected > 0)
            log?.Invoke($"warning: {data.Rejected} record(s) of {request.DataPath} could not be read and are left out; first: {data.FirstRejections[0]}");
        var examples = EvalData.Sample(data.Examples, request.Limit, request.Seed);
        log?.Invoke($"data: {examples.Count} of {data.Examples.Count} examples ({data.Format}) from {request.DataPath}");
        var conversations = request.MultiTurn ? Conversations(request, examples) : null;
        var robustnessExamples = request.Robustness > 0 ? RobustnessExamples(request, examples) : null;
        var shots = request.ShotsFrom is not null ? ShotData(request, examples) : default;

        // Everything that can refuse the run is checked before the output folder is touched.
        Dictionary<string, string>? given = request.PredictionsPath is { } pp ? ReadPredictions(pp, examples) : null;
        using var loaded = request.ModelDir is { } md ? LoadedModel.Load(md, request.AdapterDir) : null;
        var formatter = loaded is null
            ? PromptFormatter.Create(string.IsNullOrWhiteSpace(request.Template) || request.Template == "auto" ? "raw" : request.Template, request.DataPath)
            : loaded.PromptFormat(request.Template, log);
        log?.Invoke($"prompt format: {formatter.Describe()}");

        Directory.CreateDirectory(request.OutDir);
        var settings = Settings(request, data.Format);
        var done = PrepareFolder(request, settings, log);
        settings["template"] = formatter.Name;
        var wanted = examples.Select(e => e.Id).ToHashSet();
        foreach (var id in done.Keys.Where(k => !wanted.Contains(k)).ToList()) done.Remove(id);
        int resumed = done.Count;
        if (resumed > 0) log?.Invoke($"resuming: {resumed} of {examples.Count} examples already in {PredictionsFile}");

        var pending = examples.Where(e => !done.ContainsKey(e.Id)).ToList();
        var path = Path.Combine(request.OutDir, PredictionsFile);
        var progress = new EvalProgress(pending.Count, resumed, examples.Count, log);
        double generationSeconds = 0;
        long generationTokens = 0;
        using (var writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)))
        {
            var generator = loaded is null ? null : new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, formatter, request.Generation);
            var scorer = loaded is null ? null : new ContinuationScorer(loaded.Model, loaded.Tokenizer, formatter.AddSpecialTokens);
            int batch = request.Generation.BatchSize;
            for (int start = 0; start < pending.Count; start += batch)
            {
                ct.ThrowIfCancellationRequested();
                var chunk = pending.Skip(start).Take(batch).ToList();
                var prompts = chunk.Select(e => formatter.Format(e.Record)).ToList();
                var watch = Stopwatch.StartNew();
                string[] predictions;
                int[] promptTokens = new int[chunk.Count], generatedTokens = new int[chunk.Count];
                string?[] stops = new string?[chunk.Count];
                if (given is not null) predictions = chunk.Select(e => given[e.Id]).ToArray();
                else
                {
                    var ids = prompts.Select(generator!.FormattedPromptIds).ToList();
                    var segments = loaded!.Model.ReadsSegments
                        ? chunk.Select((e, i) => formatter.PromptSegments(e.Record, loaded.Tokenizer, ids[i])).ToList() : null;
                    var generated = Generator.Generate(loaded.Model, ids, generator.Options(), segments);
                    generationSeconds += watch.Elapsed.TotalSeconds;
                    generationTokens += generated.Sum(g => g.GeneratedIds.Length);
                    predictions = new string[chunk.Count];
                    for (int i = 0; i < chunk.Count; i++)
                    {
                        predictions[i] = InferenceTextGenerator.CutAtStop(
                            loaded.Tokenizer.Decode(generated[i].GeneratedIds, skipSpecialTokens: true), request.Generation.StopStrings).Trim();
                        promptTokens[i] = ids[i].Length;
                        generatedTokens[i] = generated[i].GeneratedIds.Length;
                        stops[i] = generated[i].StopReason;
                    }
                }
                var lines = new List<JsonObject>();
                // Instruction-aware models score the reference with the segments training gave prompt and response.
                var refScores = scorer?.Score(chunk.Select((e, i) => (prompts[i], request.ReferencePrefix + e.References[0])).ToList(),
                    loaded!.Model.ReadsSegments
                        ? (i, ids) => formatter.PromptResponseSegments(chunk[i].Record, request.ReferencePrefix + chunk[i].References[0], loaded.Tokenizer, ids)
                        : null);
                for (int i = 0; i < chunk.Count; i++)
                {
                    var e = chunk[i];
                    var metrics = ExampleMetrics.Score(e, predictions[i], request.Stem);
                    if (refScores is not null && refScores[i].Tokens > 0)
                    {
                        metrics["ref_logprob"] = refScores[i].LogProb;
                        metrics["ref_tokens"] = refScores[i].Tokens;
                        metrics["ref_ppl"] = refScores[i].Perplexity;
                    }
                    if (scorer is not null && e.Options is { } options && e.Gold is int gold)
                        AddLogLikelihoodChoice(metrics, scorer, prompts[i], options, gold, request.ReferencePrefix.Length > 0 ? request.ReferencePrefix : " ");
                    var line = new JsonObject
                    {
                        ["id"] = e.Id,
                        ["task"] = e.Task,
                        ["level"] = EvalRunReport.Level(e),
                        ["prompt"] = prompts[i],
                        ["reference"] = e.References[0],
                        ["prediction"] = predictions[i],
                        ["metrics"] = metrics,
                    };
                    if (given is null)
                    {
                        line["tokens"] = new JsonObject { ["prompt"] = promptTokens[i], ["generated"] = generatedTokens[i] };
                        line["stop"] = stops[i];
                    }
                    line["seconds"] = Math.Round(watch.Elapsed.TotalSeconds / chunk.Count, 4);
                    lines.Add(line);
                }
                foreach (var line in lines)
                {
                    writer.Write(line.ToJsonString());
                    writer.Write('\n');
                    done[line["id"]!.GetValue<string>()] = line;
                }
                writer.Flush();
                ((FileStream)writer.BaseStream).Flush(flushToDisk: true);
                progress.Batch(chunk.Count, generatedTokens.Sum());
            }
        }

        // Data order, atomically, so the file reads the same however often the run was resumed.
        var ordered = examples.Select(e => done[e.Id]).ToList();
        AtomicFile.WriteAllText(path, string.Concat(ordered.Select(l => l.ToJsonString() + "\n")));
        settings["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
        if (generationTokens > 0)
        {
            // This session's generation alone (prefill + decode, no scoring): what --batch-size changes.
            settings["generation_seconds"] = Math.Round(generationSeconds, 3);
            settings["generation_tokens_per_s"] = Math.Round(generationTokens / Math.Max(generationSeconds, 1e-9), 1);
        }
        var results = EvalRunReport.Aggregate(examples, ordered, settings);
        if (conversations is not null)
            results["multi_turn"] = MultiTurn(request, loaded!, formatter, conversations, log).ToJson();
        if (robustnessExamples is not null)
            results["robustness"] = Robustness(request, loaded!, formatter, robustnessExamples, log, ct).ToJson();
        if (shots.Train is not null)
        {
            var clock2 = Stopwatch.StartNew();
            var gen = new InferenceTextGenerator(loaded!.Model, loaded.Tokenizer, formatter, request.Generation);
            var curves = Generalization.ShotCurves.Evaluate(shots.Train, shots.Eval!, request.Shots, gen, request.Seed);
            curves["train_file"] = Path.GetFullPath(request.ShotsFrom!);
            results["few_shot"] = curves;
            log?.Invoke($"shot curves: k = {string.Join(", ", request.Shots)} over {shots.Eval!.Count} examples in {clock2.Elapsed.TotalSeconds:0.0} s");
        }
        EvalRunReport.Write(results, ordered, request.OutDir);
        return new Outcome(results, examples.Count, resumed, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The conversations multi-turn coherence runs on: the evaluated records with two or more assistant turns
    /// (refused, before anything is written, when there are none or no model generates).</summary>
    private static List<CoherenceConversation> Conversations(EvalRunRequest request, IReadOnlyList<EvalExample> examples)
    {
        if (request.ModelDir is null) throw new EvalInputException("--multi-turn needs --model (replies and likelihoods come from the model)");
        var list = examples.Where(e => CoherenceEvaluator.IsMultiTurn(e.Record.Messages))
            .Select(e => new CoherenceConversation(e.Id, e.Record.Messages!)).ToList();
        if (list.Count == 0)
            throw new EvalInputException($"--multi-turn: no record of {request.DataPath} has two or more assistant turns (give a sharegpt or messages file of conversations)");
        return list;
    }

    private static (List<Generalization.TaskExample>? Train, List<Generalization.TaskExample>? Eval) ShotData(EvalRunRequest request, IReadOnlyList<EvalExample> examples)
    {
        if (request.ModelDir is null) throw new EvalInputException("--shots-from needs --model (every k is generated by the model)");
        if (request.Shots.Count == 0 || request.Shots.Any(k => k < 0 || k > 64)) throw new EvalInputException("--shots: give k values in [0, 64], e.g. 0,1,2,4,8");
        if (request.ShotsLimit < 1) throw new EvalInputException($"--shots-limit {request.ShotsLimit}: must be ≥ 1");
        static Generalization.TaskExample Task(EvalExample e) => new(e.Task, e.Record.Instruction, e.Record.Input, e.References[0]);
        var train = EvalData.Load(request.ShotsFrom!, request.Format, request.Fields).Examples
            .Where(e => !e.Record.IsChat && e.Options is null).Select(Task).ToList();
        if (train.Count == 0) throw new EvalInputException($"--shots-from {request.ShotsFrom}: no single-turn record to draw examples from");
        var eval = EvalData.Sample(examples.Where(e => !e.Record.IsChat && e.Options is null).ToList(), request.ShotsLimit, request.Seed).Select(Task).ToList();
        if (eval.Count == 0) throw new EvalInputException($"--shots-from: no single-turn record in {request.DataPath} to evaluate");
        return (train, eval);
    }

    private static List<EvalExample> RobustnessExamples(EvalRunRequest request, IReadOnlyList<EvalExample> examples)
    {
        if (request.ModelDir is null) throw new EvalInputException("--robustness needs --model (every phrasing is answered by the model)");
        if (request.Paraphrases < 1 || request.Paraphrases > 6) throw new EvalInputException($"--paraphrases {request.Paraphrases}: must be in [1, 6]");
        if (request.BackTranslate is { } bt && !bt.StartsWith(ChatClients.LocalPrefix, StringComparison.Ordinal))
        {
            if (!Uri.TryCreate(bt, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                throw new EvalInputException($"--back-translate {bt}: give local:MODEL_DIR[+ADAPTER_DIR] or an http(s) URL of an OpenAI-compatible endpoint");
            if (string.IsNullOrWhiteSpace(request.BackTranslateModel)) throw new EvalInputException($"--back-translate {bt}: name the model with --back-translate-model");
        }
        else if (request.BackTranslate is { } local && !Directory.Exists(local[ChatClients.LocalPrefix.Length..].Split('+')[0]))
            throw new EvalInputException($"--back-translate {local}: model folder not found");
        var single = examples.Where(e => !e.Record.IsChat && e.Record.Instruction.Trim().Length > 0 && e.Options is null).ToList();
        if (single.Count == 0) throw new EvalInputException($"--robustness: no single-turn record with an instruction in {request.DataPath}");
        return EvalData.Sample(single, request.Robustness, request.Seed);
    }

    private static ParaphraseRobustnessResult Robustness(EvalRunRequest request, LoadedModel loaded, PromptFormatter formatter,
        IReadOnlyList<EvalExample> examples, Action<string>? log, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        Dictionary<string, string>? translations = null;
        if (request.BackTranslate is { } endpoint)
        {
            translations = [];
            var key = request.BackTranslateKeyEnv is { } env ? Environment.GetEnvironmentVariable(env) : null;
            Microsoft.Extensions.AI.IChatClient client;
            try { client = ChatClients.Create(endpoint, request.BackTranslateModel, key); }
            catch (Exception ex) when (ex is ArgumentException or IOException or InvalidDataException or FormatException or System.Text.Json.JsonException or KeyNotFoundException)
            {
                throw new EvalInputException($"--back-translate {endpoint}: {ex.Message}");
            }
            using (client)
            {
                var translator = new BackTranslator(client, request.Pivot);
                int failed = 0;
                foreach (var e in examples)
                {
                    ct.ThrowIfCancellationRequested();
                    try
                    {
                        if (translator.RoundTripAsync(e.Record.Instruction, ct).GetAwaiter().GetResult() is { } back) translations[e.Id] = back;
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                    {
                        if (failed++ < 3) log?.Invoke($"warning: back-translation of example {e.Id} failed: {ex.GetType().Name}: {ex.Message.Split('\n')[0]}");
                    }
                }
                log?.Invoke($"back-translation ({request.Pivot} round trip via {(endpoint.StartsWith(ChatClients.LocalPrefix, StringComparison.Ordinal) ? endpoint : new Uri(endpoint).Host)}): {translations.Count} of {examples.Count} instructions rephrased, {failed} failed");
            }
        }
        var generator = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, formatter, request.Generation);
        var result = ParaphraseRobustness.Evaluate(examples.Select(e => (e.Id, e.Record, e.References)).ToList(),
            records => generator.GenerateRecords(records, ct), request.Paraphrases, request.Seed,
            translations, request.BackTranslate is { } ep && ep.StartsWith(ChatClients.LocalPrefix, StringComparison.Ordinal) ? ep : request.BackTranslate is null ? null : $"{request.BackTranslateModel} at {request.BackTranslate}");
        log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"robustness: {examples.Count} examples, {result.Examples.Sum(e => e.Variants.Count)} phrasings in {clock.Elapsed.TotalSeconds:0.0} s: mean F1 {result.Mean:0.000}, mean std {result.MeanStd:0.000}, mean worst drop {result.MeanWorstDrop:0.000}"));
        return result;
    }

    private static CoherenceResult MultiTurn(EvalRunRequest request, LoadedModel loaded, PromptFormatter formatter,
        IReadOnlyList<CoherenceConversation> conversations, Action<string>? log)
    {
        var clock = Stopwatch.StartNew();
        var model = new ModelConversation(loaded, formatter, request.Generation, request.ReferencePrefix);
        LoadedModel? own = null;
        try
        {
            string? embedDir = request.EmbedModel ?? (request.AdapterDir is null ? null : request.ModelDir);
            if (embedDir is not null) own = LoadedModel.Load(embedDir);
            var embedModel = own ?? loaded;
            var embedder = new ModelEmbedder(embedModel.Model, embedModel.Tokenizer, Path.GetFullPath(embedModel.Directory));
            var result = CoherenceEvaluator.Evaluate(conversations, model, embedder);
            log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"multi-turn: {conversations.Count} conversations in {clock.Elapsed.TotalSeconds:0.0} s: relevance {result.Relevance:0.000}, consistency {result.Consistency:0.000}, progression {result.Progression:0.000} (chance {result.ProgressionChance:0.000}), completion {result.Completion:0.000}"));
            return result;
        }
        finally { own?.Dispose(); }
    }

    /// <summary>
    /// The runs an <c>eval:</c> recipe section asks for (<c>itune eval run --config FILE</c>): one per
    /// <c>eval.heldout</c> set, into <c>eval.output_dir</c>/&lt;set name&gt; (default checkpoint.output_dir/eval). The
    /// model is <paramref name="model"/> when given, else checkpoint.output_dir/final after full fine-tuning, else
    /// model.path; the adapter is <paramref name="adapter"/> when given, else checkpoint.output_dir/adapter when the run
    /// exported one (and the model is not final/).
    /// </summary>
    public static List<EvalRunRequest> FromConfig(Training.Config.TrainConfig c, string? model = null, string? adapter = null, Action<string>? log = null)
    {
        var e = c.Eval;
        if (e.Heldout.Count == 0) throw new EvalInputException("eval.heldout: no held-out set named (a list of files or folders)");
        var runDir = c.Checkpoint.OutputDir;
        string final = Path.Combine(runDir, "final"), exported = Path.Combine(runDir, "adapter");
        model ??= Directory.Exists(final) ? final : c.Model.Path;
        if (string.IsNullOrWhiteSpace(model)) throw new EvalInputException("model.path: empty, and the run has no final/ model to evaluate");
        adapter ??= model != final && Directory.Exists(exported) ? exported : null;
        log?.Invoke($"eval: model {model}{(adapter is null ? "" : $" + adapter {adapter}")} on {e.Heldout.Count} held-out set(s)");
        var outRoot = e.OutputDir.Length > 0 ? e.OutputDir : Path.Combine(runDir, "eval");
        var names = new HashSet<string>(StringComparer.Ordinal);
        var requests = new List<EvalRunRequest>();
        foreach (var set in e.Heldout)
        {
            var name = Path.GetFileNameWithoutExtension(set.TrimEnd('/', '\\'));
            if (!names.Add(name)) throw new EvalInputException($"eval.heldout: two sets are named \"{name}\"; their output folders would collide");
            requests.Add(new EvalRunRequest(set, Path.Combine(outRoot, name))
            {
                Format = e.Format.Length > 0 ? e.Format : (set.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) || Directory.Exists(set) ? null : c.Data.Format),
                Split = e.Split,
                ModelDir = model,
                AdapterDir = adapter,
                Template = e.Template.Length > 0 ? e.Template : null,
                Limit = e.Limit,
                Seed = c.Training.Seed,
                ReferencePrefix = e.ReferencePrefix,
                MultiTurn = e.MultiTurn,
                EmbedModel = e.EmbedModel.Length > 0 ? e.EmbedModel : null,
                Robustness = e.Robustness,
                Paraphrases = e.Paraphrases,
                BackTranslate = e.BackTranslate.Length > 0 ? e.BackTranslate : null,
                BackTranslateModel = e.BackTranslateModel.Length > 0 ? e.BackTranslateModel : null,
                BackTranslateKeyEnv = e.BackTranslateKeyEnv.Length > 0 ? e.BackTranslateKeyEnv : null,
                Pivot = e.Pivot,
                ShotsFrom = e.ShotsFrom.Length > 0 ? e.ShotsFrom : null,
                Shots = e.Shots,
                ShotsLimit = e.ShotsLimit,
                Generation = new EvalGenerationSettings { MaxNewTokens = e.MaxNewTokens, BatchSize = e.BatchSize, Seed = c.Training.Seed },
            });
        }
        return requests;
    }

    /// <summary>lm-eval's multiple_choice: each option scored as a continuation (after a space) of the prompt; the
    /// choice is the option with the highest sum of log-probs (<c>ll_choice</c>), and with the highest sum divided by
    /// the option's length in characters (<c>ll_norm_choice</c>, lm-eval's acc_norm).</summary>
    private static void AddLogLikelihoodChoice(JsonObject metrics, ContinuationScorer scorer, string prompt,
        IReadOnlyList<string> options, int gold, string delimiter)
    {
        var scores = scorer.Score(options.Select(o => (prompt, delimiter + o)).ToList());
        int best = 0, bestNorm = 0;
        for (int k = 1; k < options.Count; k++)
        {
            if (scores[k].LogProb > scores[best].LogProb) best = k;
            if (scores[k].LogProb / (delimiter + options[k]).Length > scores[bestNorm].LogProb / (delimiter + options[bestNorm]).Length) bestNorm = k;
        }
        metrics["ll_choice"] = ((char)('A' + best)).ToString();
        metrics["ll_norm_choice"] = ((char)('A' + bestNorm)).ToString();
        metrics["ll_correct"] = best == gold ? 1 : 0;
        metrics["ll_norm_correct"] = bestNorm == gold ? 1 : 0;
        metrics["ll_options"] = new JsonArray(scores.Select(s => (JsonNode?)Math.Round(s.LogProb, 6)).ToArray());
    }

    private static JsonObject Settings(EvalRunRequest r, string format) => new()
    {
        ["data"] = Path.GetFullPath(r.DataPath),
        ["format"] = format,
        ["dataset"] = r.Dataset,
        ["split"] = r.Split,
        ["model"] = r.ModelDir is null ? null : Path.GetFullPath(r.ModelDir),
        ["adapter"] = r.AdapterDir is null ? null : Path.GetFullPath(r.AdapterDir),
        ["predictions"] = r.PredictionsPath is null ? null : Path.GetFullPath(r.PredictionsPath),
        ["template_requested"] = r.Template,
        ["max_new_tokens"] = r.Generation.MaxNewTokens,
        ["temperature"] = r.Generation.Temperature,
        ["top_k"] = r.Generation.TopK,
        ["top_p"] = r.Generation.TopP,
        ["repetition_penalty"] = r.Generation.RepetitionPenalty,
        ["stop"] = new JsonArray(r.Generation.StopStrings.Select(s => (JsonNode?)s).ToArray()),
        ["limit"] = r.Limit,
        ["seed"] = r.Seed,
        ["stem"] = r.Stem,
        ["reference_prefix"] = r.ReferencePrefix,
        ["multi_turn"] = r.MultiTurn,
        ["embed_model"] = r.EmbedModel is null ? null : Path.GetFullPath(r.EmbedModel),
        ["robustness"] = r.Robustness,
        ["paraphrases"] = r.Paraphrases,
        ["back_translate"] = r.BackTranslate,
        ["back_translate_model"] = r.BackTranslateModel,
        ["pivot"] = r.Pivot,
        ["shots_from"] = r.ShotsFrom is null ? null : Path.GetFullPath(r.ShotsFrom),
        ["shots"] = new JsonArray(r.Shots.Select(k => (JsonNode?)k).ToArray()),
        ["shots_limit"] = r.ShotsLimit,
    };

    // Keys whose change makes earlier predictions wrong for this run (batch size and timing do not).
    private static readonly string[] IdentityKeys =
        ["data", "format", "dataset", "split", "model", "adapter", "predictions", "template_requested", "max_new_tokens", "temperature",
         "top_k", "top_p", "repetition_penalty", "stop", "seed", "stem", "reference_prefix"];

    /// <summary>Checks the folder belongs to this run (or is new), writes run.json, and returns the predictions
    /// already written, by id. A torn last line (a kill mid-write) is dropped.</summary>
    private static Dictionary<string, JsonObject> PrepareFolder(EvalRunRequest request, JsonObject settings, Action<string>? log)
    {
        var settingsPath = Path.Combine(request.OutDir, SettingsFile);
        var predictionsPath = Path.Combine(request.OutDir, PredictionsFile);
        if (File.Exists(settingsPath) && !request.Force)
        {
            JsonObject? old = null;
            try { old = JsonNode.Parse(File.ReadAllText(settingsPath)) as JsonObject; } catch (JsonException) { }
            if (old is null) throw new EvalInputException($"--out {request.OutDir}: {SettingsFile} is unreadable; use another folder or --force");
            foreach (var key in IdentityKeys)
            {
                var a = old[key]?.ToJsonString() ?? "null";
                var b = settings[key]?.ToJsonString() ?? "null";
                if (a != b)
                    throw new EvalInputException($"--out {request.OutDir} holds a run with {key} = {a}, this run has {b}; use another folder, or --force to start over there");
            }
        }
        else if (!File.Exists(settingsPath) && File.Exists(predictionsPath) && !request.Force)
            throw new EvalInputException($"--out {request.OutDir}: {PredictionsFile} exists but {SettingsFile} does not (not an eval run folder); use another folder or --force");
        if (request.Force && File.Exists(predictionsPath)) File.Delete(predictionsPath);
        AtomicFile.WriteAllText(settingsPath, settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        var done = new Dictionary<string, JsonObject>();
        if (!File.Exists(predictionsPath)) return done;
        var good = new StringBuilder();
        int dropped = 0;
        foreach (var text in File.ReadLines(predictionsPath))
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            try
            {
                if (JsonNode.Parse(text) is JsonObject o && o["id"]?.GetValue<string>() is { } id && o["prediction"] is not null && o["metrics"] is JsonObject)
                {
                    done[id] = o;
                    good.Append(text).Append('\n');
                    continue;
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException) { }
            dropped++;
        }
        if (dropped > 0)
        {
            log?.Invoke($"{PredictionsFile}: {dropped} unreadable line(s) (an interrupted write) dropped; those examples run again");
            AtomicFile.WriteAllText(predictionsPath, good.ToString());
        }
        return done;
    }

    /// <summary>
    /// The <c>--predictions</c> file: JSONL of <c>{"id", "prediction"}</c> (an eval run's predictions.jsonl qualifies).
    /// When no line has an id, lines are matched to the data in order and must be as many. Every evaluated example
    /// needs a prediction; an id the data does not have is an error (it usually means the wrong file).
    /// </summary>
    public static Dictionary<string, string> ReadPredictions(string path, IReadOnlyList<EvalExample> examples)
    {
        if (!File.Exists(path)) throw new EvalInputException($"--predictions {path}: file not found");
        var byId = new Dictionary<string, string>();
        var inOrder = new List<string>();
        int lineNo = 0, withId = 0;
        foreach (var text in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonObject o;
            try { o = JsonNode.Parse(text) as JsonObject ?? throw new JsonException("not a JSON object"); }
            catch (JsonException ex) { throw new EvalInputException($"{path}:{lineNo}: {ex.Message}"); }
            if (o["prediction"] is not JsonValue pv || pv.GetValueKind() != JsonValueKind.String)
                throw new EvalInputException($"{path}:{lineNo}: prediction: missing or not a string");
            var prediction = pv.GetValue<string>();
            inOrder.Add(prediction);
            if (o["id"] is JsonValue iv)
            {
                var id = iv.GetValueKind() == JsonValueKind.String ? iv.GetValue<string>() : iv.ToJsonString();
                if (!byId.TryAdd(id, prediction)) throw new EvalInputException($"{path}:{lineNo}: id \"{id}\" occurs twice");
                withId++;
            }
        }
        if (withId == 0)
        {
            if (inOrder.Count != examples.Count)
                throw new EvalInputException($"--predictions {path}: {inOrder.Count} lines without ids for {examples.Count} examples (give ids, or one line per example in data order)");
            return examples.Select((e, i) => (e.Id, inOrder[i])).ToDictionary(x => x.Id, x => x.Item2);
        }
        if (withId != inOrder.Count) throw new EvalInputException($"--predictions {path}: some lines have an id and some do not");
        var missing = examples.Where(e => !byId.ContainsKey(e.Id)).Select(e => e.Id).ToList();
        if (missing.Count > 0)
            throw new EvalInputException($"--predictions {path}: no prediction for {missing.Count} example(s), e.g. id {string.Join(", ", missing.Take(5))}");
        return byId;
    }
}

/// <summary>Progress of a run on stderr: examples done, tokens per second, and the time left (every batch, at
/// most every 2 s, and at the end).</summary>
public sealed class EvalProgress(int pending, int resumed, int total, Action<string>? log)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _lastPrint = -10;
    private int _done;
    private long _tokens;

    public void Batch(int examples, int tokens)
    {
        _done += examples;
        _tokens += tokens;
        double s = _clock.Elapsed.TotalSeconds;
        if (s - _lastPrint < 2 && _done < pending) return;
        _lastPrint = s;
        double eta = _done > 0 ? s / _done * (pending - _done) : double.NaN;
        log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"eval: {resumed + _done}/{total} examples, {(_tokens > 0 ? $"{_tokens / Math.Max(s, 1e-9):0} tok/s, " : "")}{s:0}s elapsed, ETA {(double.IsFinite(eta) ? TimeSpan.FromSeconds(eta).ToString(@"h\:mm\:ss") : "?")}"));
    }
}
