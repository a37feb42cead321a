using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using InstructTune.Data.Augmentation;
using InstructTune.Data.Cache;
using InstructTune.Data.Loading;
using InstructTune.Data.Mixing;
using InstructTune.Data.Pipeline;
using InstructTune.Data.Quality;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Recipes;

/// <summary>One dataset after the pipeline: its stats, its examples (task ids in the run's vocabulary) split into train and validation.</summary>
public sealed record PreparedDataset(string Name, int Stage, bool PlainText, string Dir, PrepareStats Stats,
    IReadOnlyList<TokenizedExample> Train, IReadOnlyList<TokenizedExample> Validation);

/// <summary>What one stage of the mixture holds: examples, tokens and learned tokens drawn from each dataset.</summary>
public sealed record StageReport(
    [property: JsonPropertyName("stage")] int Stage,
    [property: JsonPropertyName("examples")] int Examples,
    [property: JsonPropertyName("epochs")] int Epochs,
    [property: JsonPropertyName("by_dataset")] IReadOnlyDictionary<string, StageShare> ByDataset);

public sealed record StageShare(
    [property: JsonPropertyName("rate")] double Rate,
    [property: JsonPropertyName("examples")] int Examples,
    [property: JsonPropertyName("tokens")] long Tokens,
    [property: JsonPropertyName("learned_tokens")] long LearnedTokens);

/// <summary>The data of a run: datasets, the staged mixture (one example list per stage) and the prompt format.</summary>
public sealed record PreparedData(IReadOnlyList<PreparedDataset> Datasets, IReadOnlyList<IReadOnlyList<TokenizedExample>> Stages,
    IReadOnlyList<int> StageEpochs, IReadOnlyList<StageReport> StageReports, IReadOnlyList<TokenizedExample> Validation,
    IReadOnlyList<string> TaskNames, PromptFormat Prompt, string OutDir)
{
    public long LearnedTokens => Stages.Sum(s => s.Sum(e => (long)e.LearnedTokens));
}

/// <summary>
/// The data workflow that <c>itune prepare</c> and <c>itune train</c> share (one pipeline, the same stats): resolve
/// <c>data.path</c> or <c>data.datasets</c> (files, HF Parquet folders, LLaMA-Factory dataset_info.json entries, or a
/// folder an earlier prepare wrote), run every dataset through load → validate → system prompt → augment → dedup and
/// quality → template + tokenize + mask → too-long policy → shards, split off validation, balance complexity, and mix
/// them into stages (<see cref="MixPlan"/>). Writes <c>prepared.json</c> (what a later run needs to reuse the folder)
/// and <c>data_report.json</c> (the stats per dataset and per stage). Config errors name the key.
/// </summary>
public static class PrepareRecipe
{
    public const string PreparedFile = "prepared.json";
    public const string ReportFile = "data_report.json";
    /// <summary>The replay buffer each stage drew its replayed examples from (data.replay_buffer): dataset name and example index.</summary>
    public const string ReplayBufferFile = "replay_buffer.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>One dataset of the recipe with every per-dataset default resolved.</summary>
    public sealed record ResolvedDataset(string Name, string Key, DataSource Source, int Stage, double Weight, int Cap, string Template,
        string SystemPrompt, TooLongPolicy TooLong, bool PlainText);

    /// <summary>prepared.json: enough to reopen a prepare folder as data.path.</summary>
    public sealed record PreparedManifest(
        [property: JsonPropertyName("version")] int Version,
        [property: JsonPropertyName("tokenizer_sha256")] string TokenizerSha256,
        [property: JsonPropertyName("max_seq_len")] int MaxSeqLen,
        [property: JsonPropertyName("prompt_format")] PromptFormatRecord PromptFormat,
        [property: JsonPropertyName("data")] string DataYaml,
        [property: JsonPropertyName("datasets")] IReadOnlyList<PreparedEntry> Datasets);

    public sealed record PreparedEntry(
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("dir")] string Dir,
        [property: JsonPropertyName("stage")] int Stage,
        [property: JsonPropertyName("weight")] double Weight,
        [property: JsonPropertyName("cap")] int Cap,
        [property: JsonPropertyName("plain_text")] bool PlainText);

    /// <summary>Runs the data recipe of <paramref name="config"/> into <paramref name="outDir"/>.</summary>
    public static PreparedData Run(TrainConfig config, ITokenizer tokenizer, string tokenizerPath, string outDir, bool force = false, Action<string>? say = null)
    {
        var d = config.Data;
        ValidateKeys(d);
        if (d.Datasets.Count == 0 && !string.IsNullOrEmpty(d.Path) && Directory.Exists(d.Path) && File.Exists(Path.Combine(d.Path, PreparedFile)))
            return Reopen(config, tokenizer, tokenizerPath, d.Path, outDir, force, say);
        var datasets = Resolve(d);
        Directory.CreateDirectory(outDir);
        var prompts = new Dictionary<string, PromptFormat>(StringComparer.Ordinal);
        PromptFormat PromptOf(string spec, string key)
        {
            if (prompts.TryGetValue(spec, out var p)) return p;
            try { p = PromptFormat.Resolve(spec, tokenizerPath, d.TrainOn, d.TrainOnEos).WithMarkers(config.Model.InstructionAware.MarkerTokens); }
            catch (ArgumentException e) { throw new ConfigException($"{key}: {e.Message}"); }
            var missing = p.MissingSpecialTokens(tokenizer);
            if (missing.Count > 0)
                throw new ConfigException($"{key}: the chat template writes special tokens the tokenizer does not have: {string.Join(", ", missing)} " +
                                          "(they would be learned as pieces of text; use a tokenizer that has them)");
            return prompts[spec] = p;
        }
        var transformsBase = Transforms(d, tokenizer, config.Training.Seed);
        var results = new List<PreparedDataset>();
        var entries = new List<PreparedEntry>();
        var taskVocabulary = new TaskVocabulary();
        for (int i = 0; i < datasets.Count; i++)
        {
            var ds = datasets[i];
            var dir = datasets.Count == 1 ? outDir : Path.Combine(outDir, "datasets", $"{i:D2}-{Slug(ds.Name)}");
            var prompt = PromptOf(ds.Template, ds.Template != d.Template ? ds.Key + ".template" : "data.template");
            say?.Invoke($"data: {ds.Name} ({ds.Source.Format}, template {ds.Template}, stage {ds.Stage}) → {dir}");
            var options = new PrepareOptions([ds.Source], tokenizerPath, ds.Template, dir, d.MaxSeqLen, d.Pack, d.SkipInvalid, d.TrainOnInputs,
                BatchSize: config.Training.MicroBatchSize, Dedup: d.Dedup != DedupMode.Off, NearDupJaccard: d.Dedup == DedupMode.Near ? d.NearDupThreshold : 0, Force: force,
                Prompt: prompt, TooLong: ds.TooLong, Transforms: transformsBase with { SystemPrompt = ds.SystemPrompt, Key = transformsBase.Key + "|" + ds.SystemPrompt });
            PrepareResult result;
            try { result = PreparePipeline.Run(options, tokenizer); }
            catch (DataFormatException e) when (!d.SkipInvalid && e.Rejection != null)
            {
                throw new DataFormatException(e.Message + " (set data.skip_invalid: true to skip malformed records)");
            }
            results.Add(Load(ds.Name, ds.Stage, ds.PlainText, result.OutDir, result.Stats, result.Manifest, taskVocabulary, d, config.Training.Seed + i));
            entries.Add(new PreparedEntry(ds.Name, Path.GetRelativePath(outDir, dir), ds.Stage, ds.Weight, ds.Cap, ds.PlainText));
        }
        var defaultPrompt = PromptOf(d.Template, "data.template");
        var manifest = new PreparedManifest(1, CacheManifest.TokenizerHash(tokenizerPath), d.MaxSeqLen, defaultPrompt.ToRecord(tokenizer),
            ConfigLoader.ToYaml(d), entries);
        AtomicFile.WriteAllText(Path.Combine(outDir, PreparedFile), JsonSerializer.Serialize(manifest, Json));
        var heldOut = HeldOut(config, tokenizer, tokenizerPath, defaultPrompt, taskVocabulary, outDir, force, say);
        return Mix(config, results, entries, taskVocabulary, defaultPrompt, outDir, heldOut);
    }

    /// <summary>A folder an earlier prepare wrote, as data.path: its caches, checked against this run's tokenizer and length limit.</summary>
    private static PreparedData Reopen(TrainConfig config, ITokenizer tokenizer, string tokenizerPath, string dir, string outDir, bool force, Action<string>? say)
    {
        PreparedManifest m;
        try { m = JsonSerializer.Deserialize<PreparedManifest>(File.ReadAllText(Path.Combine(dir, PreparedFile)))!; }
        catch (JsonException e) { throw new ConfigException($"data.path: {Path.Combine(dir, PreparedFile)} is not valid: {e.Message}"); }
        if (m.TokenizerSha256 != CacheManifest.TokenizerHash(tokenizerPath))
            throw new ConfigException($"data.path: '{dir}' was prepared with another tokenizer than {tokenizerPath}; run itune prepare again with this model's tokenizer");
        if (m.MaxSeqLen != config.Data.MaxSeqLen)
            throw new ConfigException($"data.max_seq_len: {config.Data.MaxSeqLen}, but '{dir}' was prepared with max_seq_len {m.MaxSeqLen}");
        if (config.Data.Template != new DataSection().Template && config.Data.Template != m.PromptFormat.Template)
            throw new ConfigException($"data.template: '{config.Data.Template}', but '{dir}' was prepared with template '{m.PromptFormat.Template}'");
        // The stored data section decides mixing and stages; this config's data keys only point at the folder.
        var stored = ConfigLoader.LoadFromString<TrainConfig>("data:\n" + Indent(m.DataYaml)).Data;
        // This run's data.validation_path replaces the stored split (the prepared folder stays as it is).
        if (!string.IsNullOrEmpty(config.Data.ValidationPath)) stored.ValidationPath = config.Data.ValidationPath;
        var markers = config.Model.InstructionAware.MarkerTokens;
        if (!(m.PromptFormat.InstructionMarkers ?? []).SequenceEqual(markers))
            throw new ConfigException($"{Models.InstructionAware.MarkerTokens.Key}: [{string.Join(", ", markers)}], but '{dir}' was prepared with instruction markers [{string.Join(", ", m.PromptFormat.InstructionMarkers ?? [])}]; prepare it again with this model.instruction_aware section",
                Models.InstructionAware.MarkerTokens.Key);
        var prompt = PromptFormat.Resolve(m.PromptFormat.Template, tokenizerPath, stored.TrainOn, stored.TrainOnEos).WithMarkers(markers);
        var vocabulary = new TaskVocabulary();
        var results = new List<PreparedDataset>();
        for (int i = 0; i < m.Datasets.Count; i++)
        {
            var e = m.Datasets[i];
            var sub = Path.Combine(dir, e.Dir);
            var cache = CacheManifest.TryRead(sub) is { } cm && cm.ShardsPresent(sub) ? cm
                : throw new ConfigException($"data.path: '{sub}' has no complete cache (manifest.json and its shards)");
            var stats = JsonSerializer.Deserialize<PrepareStats>(File.ReadAllText(Path.Combine(sub, PreparePipeline.StatsFile)))!;
            say?.Invoke($"data: {e.Name} from the prepared folder {sub}");
            results.Add(Load(e.Name, e.Stage, e.PlainText, sub, stats with { CacheReused = true }, cache, vocabulary, stored, config.Training.Seed + i));
        }
        var withStored = new TrainConfig { Data = stored, Training = config.Training };
        var heldOut = HeldOut(withStored, tokenizer, tokenizerPath, prompt, vocabulary, outDir, force, say);
        return Mix(withStored, results, m.Datasets, vocabulary, prompt, dir, heldOut);
    }

    private static string Indent(string yaml) => string.Join("\n", yaml.Split('\n').Select(l => l.Length > 0 ? "  " + l : l));

    private static PreparedDataset Load(string name, int stage, bool plain, string dir, PrepareStats stats, CacheManifest manifest,
        TaskVocabulary vocabulary, DataSection d, int seed)
    {
        var ids = manifest.Tasks.Select(vocabulary.IdOf).ToArray();
        using var cache = new CachedDataset(dir, manifest.Shards);
        var all = cache.Select(e => e with { TaskId = ids[e.TaskId] }).ToList();
        // With data.validation_path the held-out set is that file (see HeldOut); nothing is split off the training data.
        var (train, validation) = FineTuneRecipe.Split(all, string.IsNullOrEmpty(d.ValidationPath) ? d.ValidationFraction : 0, seed);
        if (d.Quality.BalanceComplexity && train.Count > 0)
            train = ComplexityBalancer.Balance(train.Select(e => e.Complexity).ToList(), train.Count, seed).Select(i => train[i]).ToList();
        return new PreparedDataset(name, stage, plain, dir, stats, train, validation);
    }

    /// <summary>
    /// data.validation_path: the held-out file through the same pipeline as the training data (format data.format, the
    /// run's prompt format, max_seq_len, truncation) into outDir/validation; no augmentation or dedup, nothing skipped
    /// silently. Null when the key is empty (the validation set is then split off by data.validation_fraction).
    /// </summary>
    private static List<TokenizedExample>? HeldOut(TrainConfig config, ITokenizer tokenizer, string tokenizerPath, PromptFormat prompt,
        TaskVocabulary vocabulary, string outDir, bool force, Action<string>? say)
    {
        var d = config.Data;
        if (string.IsNullOrEmpty(d.ValidationPath)) return null;
        const string key = "data.validation_path";
        if (!File.Exists(d.ValidationPath) && !Directory.Exists(d.ValidationPath))
            throw new ConfigException($"{key}: '{d.ValidationPath}' does not exist", key);
        ResolvedDataset v;
        try { v = Resolve(new DataSection { Path = d.ValidationPath, Format = d.Format })[0]; }
        catch (ConfigException e) { throw new ConfigException($"{key}: {e.Message}", key); }
        var dir = Path.Combine(outDir, "validation");
        say?.Invoke($"validation data: {d.ValidationPath} ({v.Source.Format}) → {dir}");
        var options = new PrepareOptions([v.Source], tokenizerPath, prompt.Spec, dir, d.MaxSeqLen, d.Pack, d.SkipInvalid, d.TrainOnInputs,
            BatchSize: config.Training.MicroBatchSize, Dedup: false, Force: force, Prompt: prompt, TooLong: v.TooLong);
        PrepareResult result;
        try { result = PreparePipeline.Run(options, tokenizer); }
        catch (DataFormatException e) when (!d.SkipInvalid && e.Rejection != null)
        {
            throw new DataFormatException(e.Message + " (data.validation_path; set data.skip_invalid: true to skip malformed records)");
        }
        var ids = result.Manifest.Tasks.Select(vocabulary.IdOf).ToArray();
        using var cache = new CachedDataset(result.OutDir, result.Manifest.Shards);
        var examples = cache.Select(e => e with { TaskId = ids[e.TaskId] }).ToList();
        if (examples.Count == 0)
            throw new ConfigException($"{key}: '{d.ValidationPath}' has no usable examples ({Describe(result.Stats)})", key);
        return examples;
    }

    private static PreparedData Mix(TrainConfig config, List<PreparedDataset> datasets, IReadOnlyList<PreparedEntry> entries, TaskVocabulary tasks,
        PromptFormat prompt, string outDir, List<TokenizedExample>? heldOut)
    {
        var d = config.Data;
        var empty = datasets.FirstOrDefault(x => x.Train.Count == 0);
        if (empty != null)
            throw new ConfigException($"data: dataset '{empty.Name}' has no usable examples ({Describe(empty.Stats)})");
        var sources = datasets.Select((x, i) => new PlanSource(x.Name, x.Stage, x.Train.Select(e => e.Length).ToArray(), entries[i].Cap, entries[i].Weight, x.PlainText)).ToList();
        var stageNumbers = sources.Select(s => s.Stage).Distinct().Order().ToList();
        var stageSettings = stageNumbers.Select((_, k) => k < d.Stages.Count
            ? new PlanStage(d.Stages[k].Epochs > 0 ? d.Stages[k].Epochs : config.Training.Epochs, d.Stages[k].Replay)
            : new PlanStage(config.Training.Epochs, 0)).ToList();
        var strategy = d.Mixing switch { DataMixing.Weights => MixStrategy.Weights, DataMixing.Temperature => MixStrategy.Temperature, _ => MixStrategy.ExamplesProportional };
        var plan = MixPlan.Build(sources, strategy, d.Mixing == DataMixing.Temperature ? d.Temperature : 1, d.PretrainRatio, stageSettings, config.Training.Seed);
        if (d.ReplayBuffer.Size > 0 || d.ReplayBuffer.Fraction > 0)
        {
            // Replayed draws come from a buffer of earlier stages' examples (data.replay_buffer), kept in the data folder.
            var (buffered, buffers) = ReplayBuffer.Apply(plan, sources, new ReplaySettings(d.ReplayBuffer.Size, d.ReplayBuffer.Fraction, d.ReplayBuffer.Sampling, config.Training.Seed));
            plan = buffered;
            var file = buffers.Select((b, k) => new Dictionary<string, object>
            {
                ["stage"] = k + 1,
                ["examples"] = b.Select(x => new Dictionary<string, object> { ["dataset"] = datasets[x.Source].Name, ["index"] = x.Index }).ToList(),
            }).ToList();
            AtomicFile.WriteAllText(Path.Combine(outDir, ReplayBufferFile), JsonSerializer.Serialize(file, Json));
        }
        var stages = new List<IReadOnlyList<TokenizedExample>>();
        var reports = new List<StageReport>();
        for (int k = 0; k < plan.Count; k++)
        {
            var p = plan[k];
            var examples = p.Draws.Select(x => datasets[x.Source].Train[x.Index]).ToList();
            stages.Add(examples);
            var byDataset = new SortedDictionary<string, StageShare>(StringComparer.Ordinal);
            int epochsFactor = p.Trivial ? Math.Max(1, p.Epochs) : 1;
            foreach (var g in p.Draws.GroupBy(x => x.Source))
            {
                int memberIndex = p.Members.ToList().IndexOf(g.Key);
                byDataset[datasets[g.Key].Name] = new StageShare(memberIndex >= 0 && p.Stage == datasets[g.Key].Stage ? p.Rates[memberIndex] : 0,
                    g.Count() * epochsFactor, g.Sum(x => (long)datasets[x.Source].Train[x.Index].Length) * epochsFactor,
                    g.Sum(x => (long)datasets[x.Source].Train[x.Index].LearnedTokens) * epochsFactor);
            }
            reports.Add(new StageReport(p.Stage, examples.Count * epochsFactor, p.Trivial ? p.Epochs : 1, byDataset));
        }
        var validation = heldOut ?? datasets.SelectMany(x => x.Validation).ToList();
        var report = new Dictionary<string, object>
        {
            ["datasets"] = datasets.ToDictionary(x => x.Name, x => (object)x.Stats),
            ["stages"] = reports,
            ["validation_examples"] = validation.Count,
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, ReportFile), JsonSerializer.Serialize(report, Json));
        return new PreparedData(datasets, stages, plan.Select(p => p.Trivial ? Math.Max(1, p.Epochs) : 1).ToList(), reports, validation, tasks.Names, prompt, outDir);
    }

    private static string Describe(PrepareStats s) =>
        $"read {s.RecordsRead}, rejected {s.RecordsRejected}, duplicates {s.DuplicatesRemoved}, flagged {s.Flagged}, dropped {s.Dropped}";

    /// <summary>data.path or data.datasets as a list of datasets with every default filled in; refuses what cannot be read.</summary>
    public static List<ResolvedDataset> Resolve(DataSection d)
    {
        if (d.Datasets.Count > 0 && !string.IsNullOrEmpty(d.Path))
            throw new ConfigException("data.path and data.datasets are both set: data.path is the one-dataset shorthand, use one of them");
        var entries = d.Datasets.Count > 0 ? d.Datasets : string.IsNullOrEmpty(d.Path)
            ? throw new ConfigException("data.path (or data.datasets) is required")
            : [new DatasetEntry { Path = d.Path, Format = d.Format }];
        var result = new List<ResolvedDataset>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            var key = d.Datasets.Count > 0 ? $"data.datasets[{i}]" : "data.path";
            string K(string field) => d.Datasets.Count > 0 ? $"{key}.{field}" : field == "path" ? "data.path" : $"data.{field}";
            if (string.IsNullOrEmpty(e.Path)) throw new ConfigException($"{K("path")} is required");
            if (!File.Exists(e.Path) && !Directory.Exists(e.Path)) throw new ConfigException($"{K("path")}: '{e.Path}' does not exist");
            if (Directory.Exists(e.Path) && File.Exists(Path.Combine(e.Path, PreparedFile)))
                throw new ConfigException($"{K("path")}: '{e.Path}' is a prepare output folder; give it as data.path on its own");
            string path = e.Path, name = e.Name;
            DataFormat format;
            var fields = e.Fields.Count > 0 ? string.Join(",", e.Fields.Select(kv => $"{kv.Key}={kv.Value}")) : null;
            if (!string.IsNullOrEmpty(e.Name))
            {
                var info = Directory.Exists(e.Path) ? Path.Combine(e.Path, "dataset_info.json") : e.Path;
                if (!File.Exists(info)) throw new ConfigException($"{K("name")}: no dataset_info.json at '{e.Path}'");
                var entry = LlamaFactoryRegistry.Read(info).FirstOrDefault(x => x.Name == e.Name)
                    ?? throw new ConfigException($"{K("name")}: '{e.Name}' is not an entry of {info} (has: {string.Join(", ", LlamaFactoryRegistry.Read(info).Select(x => x.Name))})");
                if (entry.Missing != null) throw new ConfigException($"{K("name")}: '{e.Name}' cannot be loaded: {entry.Missing}");
                path = entry.LocalPath!;
                format = entry.Format!.Value;
                fields ??= entry.Fields.Spec;
            }
            else
            {
                var formatName = string.IsNullOrEmpty(e.Format) ? d.Format : e.Format;
                try { format = DataFormats.Parse(formatName); }
                catch (ArgumentException ex) { throw new ConfigException($"{K("format")}: {ex.Message}"); }
                name = Path.GetFileNameWithoutExtension(path.TrimEnd('/', '\\'));
            }
            try { FieldMap.Parse(fields); } catch (ArgumentException ex) { throw new ConfigException($"{K("fields")}: {ex.Message}"); }
            if (e.Stage < 1) throw new ConfigException($"{K("stage")}: {e.Stage} (stages are numbered 1, 2, …)");
            if (e.Weight <= 0) throw new ConfigException($"{K("weight")}: {e.Weight.ToString(CultureInfo.InvariantCulture)} (must be > 0)");
            if (e.Cap < 0) throw new ConfigException($"{K("cap")}: {e.Cap} (must be ≥ 0; 0 = no cap)");
            TooLongPolicy tooLong = d.TooLong;
            if (!string.IsNullOrEmpty(e.TooLong))
                tooLong = (TooLongPolicy)ConfigBinder.ConvertScalar(typeof(TooLongPolicy), e.TooLong, K("too_long"));
            var unique = name;
            for (int n = 2; !names.Add(unique); n++) unique = $"{name}-{n}";
            result.Add(new ResolvedDataset(unique, key, new DataSource(path, format, fields, string.IsNullOrEmpty(e.Task) ? null : e.Task, e.Split), e.Stage, e.Weight, e.Cap,
                string.IsNullOrEmpty(e.Template) ? d.Template : e.Template, string.IsNullOrEmpty(e.SystemPrompt) ? d.SystemPrompt : e.SystemPrompt,
                tooLong, format == DataFormat.Text && d.PretrainRatio > 0));
        }
        var stages = result.Select(r => r.Stage).Distinct().Order().ToList();
        if (stages[^1] != stages.Count)
            throw new ConfigException($"data.datasets: stages must be numbered 1..n without gaps (have {string.Join(", ", stages)})");
        if (d.Stages.Count > stages.Count)
            throw new ConfigException($"data.stages has {d.Stages.Count} entries but the datasets use {stages.Count} stage(s)");
        if (d.PretrainRatio > 0 && !result.Any(r => r.PlainText))
            throw new ConfigException("data.pretrain_ratio: no dataset has format: text (plain pre-training text)");
        if (d.PretrainRatio > 0 && result.All(r => r.PlainText))
            throw new ConfigException("data.pretrain_ratio: every dataset is plain text; the ratio needs instruction data to mix with");
        return result;
    }

    private static void ValidateKeys(DataSection d)
    {
        void Require(bool ok, string key, string why) { if (!ok) throw new ConfigException($"{key}: {why}"); }
        Require(d.Temperature > 0, "data.temperature", $"{d.Temperature.ToString(CultureInfo.InvariantCulture)} (must be > 0)");
        Require(d.PretrainRatio is >= 0 and < 1, "data.pretrain_ratio", $"{d.PretrainRatio.ToString(CultureInfo.InvariantCulture)} (must be in [0, 1))");
        Require(d.NearDupThreshold is > 0 and <= 1, "data.near_dup_threshold", $"{d.NearDupThreshold.ToString(CultureInfo.InvariantCulture)} (must be in (0, 1])");
        for (int k = 0; k < d.Stages.Count; k++)
        {
            Require(d.Stages[k].Replay is >= 0 and < 1, $"data.stages[{k}].replay", "must be in [0, 1)");
            Require(d.Stages[k].Epochs >= 0, $"data.stages[{k}].epochs", "must be ≥ 0");
            Require(d.Stages[k].MaxSteps >= 0, $"data.stages[{k}].max_steps", "must be ≥ 0");
        }
        if (d.Stages.Count > 0) Require(d.Stages[0].Replay == 0, "data.stages[0].replay", "stage 1 has no earlier stage to replay");
        Require(d.ReplayBuffer.Size >= 0, "data.replay_buffer.size", "must be ≥ 0");
        Require(d.ReplayBuffer.Fraction is >= 0 and <= 1, "data.replay_buffer.fraction", "must be in [0, 1]");
        Require(d.ReplayBuffer.Size == 0 || d.ReplayBuffer.Fraction == 0, "data.replay_buffer.fraction", "and data.replay_buffer.size are both set: give one of them");
        Require(d.ReplayBuffer.Size == 0 && d.ReplayBuffer.Fraction == 0 || d.Stages.Any(x => x.Replay > 0), "data.replay_buffer",
            "is set but no stage replays: set data.stages[k].replay > 0 for a later stage");
        var a = d.Augment;
        Require(a.InstructionMask is >= 0 and <= 1, "data.augment.instruction_mask", "must be in [0, 1]");
        Require(a.Invert is >= 0 and <= 1, "data.augment.invert", "must be in [0, 1]");
        Require(a.FewShot >= 0, "data.augment.few_shot", "must be ≥ 0");
        Require(a.InstructionMaskMode is "mask" or "drop", "data.augment.instruction_mask_mode", $"'{a.InstructionMaskMode}' (expected mask or drop)");
        var q = d.Quality;
        Require(q.MinResponseChars >= 0 && q.MaxResponseChars >= 0, "data.quality.min_response_chars", "lengths must be ≥ 0");
        Require(q.MaxResponseChars == 0 || q.MaxResponseChars >= q.MinResponseChars, "data.quality.max_response_chars", "must be ≥ min_response_chars");
        Require(q.MaxRepetition is >= 0 and <= 1, "data.quality.max_repetition", "must be in [0, 1]");
        Require(q.MinAsciiLetters is >= 0 and <= 1, "data.quality.min_ascii_letters", "must be in [0, 1]");
        Require(q.MinPromptOverlap is >= 0 and <= 1, "data.quality.min_prompt_overlap", "must be in [0, 1]");
        Require(q.RougeLMax is >= 0 and <= 1, "data.quality.rouge_l_max", "must be in [0, 1]");
        for (int i = 0; i < q.ResponsePatterns.Count; i++)
        {
            try { _ = new System.Text.RegularExpressions.Regex(q.ResponsePatterns[i]); }
            catch (ArgumentException e) { throw new ConfigException($"data.quality.response_patterns[{i}]: not a valid regular expression: {e.Message}"); }
        }
    }

    /// <summary>The augmentation and quality keys as pipeline steps.</summary>
    private static DataTransforms Transforms(DataSection d, ITokenizer tokenizer, int seed)
    {
        var a = d.Augment;
        int maskId = 0;
        if (a.InstructionMask > 0 && a.InstructionMaskMode == "mask")
            maskId = tokenizer.TokenToId(a.MaskToken) ?? throw new ConfigException(
                $"data.augment.mask_token: '{a.MaskToken}' is not a token of the tokenizer (name one it has, e.g. its unk token, or use instruction_mask_mode: drop)");
        IReadOnlyList<IReadOnlyList<string>>? paraphrases = null;
        if (!string.IsNullOrEmpty(a.Paraphrases))
        {
            if (!File.Exists(a.Paraphrases)) throw new ConfigException($"data.augment.paraphrases: '{a.Paraphrases}' does not exist");
            try { paraphrases = JsonSerializer.Deserialize<List<List<string>>>(File.ReadAllText(a.Paraphrases)); }
            catch (JsonException e) { throw new ConfigException($"data.augment.paraphrases: {a.Paraphrases} must be a JSON list of lists of strings: {e.Message}"); }
        }
        var q = d.Quality;
        var verdict = q.Action == QualityAction.Review ? Verdict.Review : Verdict.Reject;
        var rules = new List<QualityRule>();
        var scorers = new List<IQualityScorer>();
        if (q.MinResponseChars > 0 || q.MaxResponseChars > 0)
            rules.Add(WithVerdict(QualityRule.OutputLength(q.MinResponseChars, q.MaxResponseChars > 0 ? q.MaxResponseChars : int.MaxValue), verdict));
        if (q.MaxRepetition > 0) { scorers.Add(new RepetitionScorer()); rules.Add(QualityRule.Above(RepetitionScorer.ScorerName, q.MaxRepetition, verdict)); }
        if (q.MinAsciiLetters > 0) { scorers.Add(new AsciiLetterScorer()); rules.Add(QualityRule.Below(AsciiLetterScorer.ScorerName, q.MinAsciiLetters, verdict)); }
        if (q.MinPromptOverlap > 0) { scorers.Add(new LexicalOverlapScorer()); rules.Add(QualityRule.Below("lexical_overlap", q.MinPromptOverlap, verdict)); }
        if (q.JsonWhenAsked) rules.Add(WithVerdict(QualityRule.JsonWhenAsked(), verdict));
        foreach (var pattern in q.ResponsePatterns)
        {
            var re = new System.Text.RegularExpressions.Regex(pattern);
            rules.Add(new QualityRule($"pattern:{pattern}", (r, _) => re.IsMatch(QualityRule.Output(r)) ? Verdict.Keep : verdict));
        }
        var quality = new QualityOptions(d.Dedup != DedupMode.Off, d.Dedup == DedupMode.Near ? d.NearDupThreshold : 0, q.RougeLMax,
            DedupOverResponse: d.DedupOver == DedupOver.PromptResponse, NearOnPromptOnly: d.DedupOver == DedupOver.Prompt);
        var key = string.Join("|", ConfigLoader.ToYaml(a), ConfigLoader.ToYaml(q), d.Dedup, d.DedupOver, d.NearDupThreshold.ToString(CultureInfo.InvariantCulture),
            paraphrases == null ? "" : CacheManifest.Sha256OfFile(a.Paraphrases));
        return new DataTransforms(d.SystemPrompt, a.Invert, a.InvertInstruction, paraphrases, a.FewShot, a.InstructionMask,
            a.InstructionMaskMode == "drop" ? MaskMode.Drop : MaskMode.Replace, maskId, rules, scorers, quality, seed, CacheManifest.Sha256OfText(key));
    }

    /// <summary>The rule with its failing verdict replaced by data.quality.action.</summary>
    private static QualityRule WithVerdict(QualityRule rule, Verdict verdict) =>
        rule with { Decide = (r, s) => rule.Decide(r, s) == Verdict.Keep ? Verdict.Keep : verdict };

    private static string Slug(string name)
    {
        var chars = name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray();
        var s = new string(chars);
        return s.Length > 40 ? s[..40] : s;
    }
}
