using System.Diagnostics;
using System.Text.Json;
using InstructTune.Data.Batching;
using InstructTune.Data.Cache;
using InstructTune.Data.Loading;
using InstructTune.Data.Quality;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Tokenizers;

namespace InstructTune.Data.Pipeline;

/// <summary>What a prepare run produced: its stats, manifest and the folder holding them.</summary>
public sealed record PrepareResult(PrepareStats Stats, CacheManifest Manifest, string OutDir)
{
    public CachedDataset Open() => new(OutDir, Manifest.Shards);
}

/// <summary>
/// Files → tokenized shards, streaming end to end: load → validate (fail|skip, rejected.jsonl) → quality
/// (dedup, near-dup; review.jsonl) → template + tokenize + mask + truncate → shards, then stats.json and
/// manifest.json. Memory holds one shard, the dedup keys and one int per example (lengths, for the padding
/// estimates). A second run whose inputs, tokenizer and settings hash to the manifest's key reuses the shards.
/// </summary>
public static class PreparePipeline
{
    public const string StatsFile = "stats.json";
    public const string RejectedFile = "rejected.jsonl";
    public const string ReviewFile = "review.jsonl";

    private const int ChunkSize = 1024;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <param name="tokenizer">The tokenizer; loaded from <see cref="PrepareOptions.TokenizerPath"/> when null.</param>
    public static PrepareResult Run(PrepareOptions o, ITokenizer? tokenizer = null)
    {
        var clock = Stopwatch.StartNew();
        foreach (var s in o.Sources)
            if (!File.Exists(s.Path) && !Directory.Exists(s.Path)) throw new DataFormatException($"{s.Path}: no such file or folder");
        Directory.CreateDirectory(o.OutDir);
        var inputs = o.Sources.SelectMany(s => CacheManifest.HashPath(s.Path)).ToList();
        var tokSha = o.TokenizerPath != null ? CacheManifest.TokenizerHash(o.TokenizerPath) : "in-memory:" + tokenizer!.GetType().FullName;
        var settings = o.CacheSettings;
        var settingsSha = CacheManifest.SettingsHash(settings);
        var key = CacheManifest.MakeKey(inputs, tokSha, settingsSha);

        var existing = CacheManifest.TryRead(o.OutDir);
        var statsPath = Path.Combine(o.OutDir, StatsFile);
        if (!o.Force && existing != null && existing.Key == key && existing.ShardsPresent(o.OutDir) && File.Exists(statsPath))
        {
            var old = JsonSerializer.Deserialize<PrepareStats>(File.ReadAllText(statsPath))!;
            return new PrepareResult(old with { CacheReused = true, Seconds = clock.Elapsed.TotalSeconds }, existing, o.OutDir);
        }
        foreach (var stale in Directory.EnumerateFiles(o.OutDir, "shard-*.bin")) File.Delete(stale);
        File.Delete(Path.Combine(o.OutDir, CacheManifest.FileName));

        tokenizer ??= TokenizerLoader.Load(o.TokenizerPath!);
        var prompt = o.ResolvePrompt();
        // Length limits are applied below (data.too_long), so the tokenizer itself never truncates.
        var mask = prompt.Mask(0);
        var tokenize = new ExampleTokenizer(tokenizer, prompt, mask with { TrainOnInputs = mask.TrainOnInputs || o.TrainOnInputs });
        var transforms = o.Transforms ?? new DataTransforms();
        var tasks = new TaskVocabulary();
        var lengths = new List<int>();
        long learned = 0, index = 0;
        int truncated = 0;
        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var writer = new ShardWriter(o.OutDir, o.ShardTokens);
        var validator = new RecordValidator(o.SkipInvalid ? InvalidPolicy.Skip : InvalidPolicy.Fail,
            o.SkipInvalid ? new RejectedLog(Path.Combine(o.OutDir, RejectedFile)) : null);
        QualityFilter quality;
        var reviewTemp = Path.Combine(o.OutDir, ReviewFile + ".tmp");
        using (var review = new StreamWriter(reviewTemp))
        {
            quality = new QualityFilter(transforms.Quality ?? new QualityOptions(o.Dedup, o.NearDupJaccard),
                transforms.Scorers, transforms.Rules, reviewQueue: review);
            try
            {
                var positives = transforms.FewShot > 0 ? SniPositives(o.Sources) : null;
                var records = transforms.ApplyToRecords(
                    validator.Apply(o.Sources.SelectMany(s => DatasetLoader.Read(s.Path, new LoadOptions(s.Format, FieldMap.Parse(s.Fields), s.Task, LoadOptions.CutFor(o.MaxSeqLen), s.Split)))),
                    positives == null ? null : task => positives.GetValueOrDefault(task) ?? []);
                // Tokenization dominates and the tokenizer is thread-safe: tokenize chunks in parallel, keep order.
                var parallel = new ParallelOptions { MaxDegreeOfParallelism = o.Threads > 0 ? o.Threads : Environment.ProcessorCount };
                var chunk = new List<InstructionRecord>(ChunkSize);
                var tokenized = new TokenizedExample[ChunkSize];
                void Drain()
                {
                    Parallel.For(0, chunk.Count, parallel, i => tokenized[i] = tokenize.Tokenize(chunk[i], tasks.IdOf(chunk[i].Task)));
                    for (int i = 0; i < chunk.Count; i++)
                    {
                        var e = transforms.ApplyToTokens(tokenized[i], index++);
                        tokenized[i] = null!;
                        bool cut = false;
                        if (o.MaxSeqLen > 0 && e.Length > o.MaxSeqLen)
                        {
                            if (o.TooLong == TooLongPolicy.Error)
                                throw new DataFormatException($"{chunk[i].Source}: {e.Length} tokens, longer than max_seq_len {o.MaxSeqLen} (too_long: error; use truncate or drop)");
                            if (o.TooLong == TooLongPolicy.Drop) { Count(dropped, "too_long"); continue; }
                            cut = e.LearnedTokens > 0;
                            e = ExampleTokenizer.Truncate(e, o.MaxSeqLen, tokenize.MarkerIds);
                            truncated++;
                        }
                        // An example whose whole response was cut away is counted apart: DataReport warns per dataset.
                        if (e.LearnedTokens == 0) { Count(dropped, cut ? ResponseTruncatedAway : "no_learned_tokens"); continue; }
                        learned += e.LearnedTokens;
                        lengths.Add(e.Length);
                        writer.Add(e);
                    }
                    chunk.Clear();
                }
                foreach (var record in quality.Apply(records))
                {
                    tasks.IdOf(record.Task);   // ids in input order, before the parallel step reads them
                    chunk.Add(record);
                    if (chunk.Count == ChunkSize) Drain();
                }
                Drain();
            }
            finally
            {
                validator.Log?.Dispose();
            }
        }
        File.Move(reviewTemp, Path.Combine(o.OutDir, ReviewFile), overwrite: true);
        writer.Flush();

        var stats = new PrepareStats(validator.Read, lengths.Count, validator.Rejected, validator.RejectedByReason, quality.DuplicatesRemoved,
            TokenStatsOf(lengths, learned), truncated, Padding(lengths, o), quality.Report, clock.Elapsed.TotalSeconds, false)
        {
            Flagged = quality.Report.Values.Sum(t => t.Flagged.Values.Sum()),
            Dropped = dropped.Values.Sum(),
            DroppedByReason = dropped,
            QualityRejected = quality.Report.Values.Sum(t => t.Rejected.Where(kv => !QualityFilter.IsDuplicateReason(kv.Key)).Sum(kv => kv.Value)),
        };
        AtomicFile.WriteAllText(statsPath, JsonSerializer.Serialize(stats, Json));
        var manifest = new CacheManifest(1, key, inputs, tokSha, settings, settingsSha, tasks.Names, writer.Shards);
        manifest.Write(o.OutDir);
        return new PrepareResult(stats, manifest, o.OutDir);
    }

    /// <summary>The dropped_by_reason key of examples that lost every learned token to truncation at max_seq_len.</summary>
    public const string ResponseTruncatedAway = "response_truncated_away";

    private static void Count(SortedDictionary<string, int> counts, string reason) => counts[reason] = counts.GetValueOrDefault(reason) + 1;

    /// <summary>Positive examples of every SNI task among the sources (for few-shot prefixing), by task name.</summary>
    private static Dictionary<string, IReadOnlyList<SniExample>> SniPositives(IEnumerable<DataSource> sources)
    {
        var result = new Dictionary<string, IReadOnlyList<SniExample>>(StringComparer.Ordinal);
        foreach (var s in sources.Where(s => s.Format == DataFormat.Sni))
            foreach (var file in Directory.Exists(s.Path) ? Directory.EnumerateFiles(s.Path, "*.json") : [s.Path])
            {
                var (task, _, _) = SniTask.Read(file);
                result[task.Name] = task.PositiveExamples;
            }
        return result;
    }

    private static TokenStats TokenStatsOf(List<int> lengths, long learned)
    {
        if (lengths.Count == 0) return new TokenStats(0, 0, 0, 0, 0);
        var sorted = lengths.ToArray();
        Array.Sort(sorted);
        // Nearest-rank 95th percentile.
        int p95 = sorted[Math.Max(0, (int)Math.Ceiling(0.95 * sorted.Length) - 1)];
        long total = 0;
        foreach (var l in sorted) total += l;
        return new TokenStats((double)total / sorted.Length, p95, sorted[^1], total, learned);
    }

    /// <summary>Padding shares of the three batchings over these lengths (batch size from the options; packed rows of MaxSeqLen).</summary>
    public static PaddingShare Padding(IReadOnlyList<int> lengths, PrepareOptions o)
    {
        if (lengths.Count == 0) return new PaddingShare(0, 0, 0);
        int seqLen = Math.Max(o.MaxSeqLen > 0 ? o.MaxSeqLen : 2048, lengths.Max());
        double Share(BatchMode mode)
        {
            var options = new BatchOptions(mode, o.BatchSize, seqLen);
            return BatchPlanner.PaddingShare(lengths, BatchPlanner.Plan(lengths, options, seed: 0, epoch: 0), options);
        }
        return new PaddingShare(Share(BatchMode.Plain), Share(BatchMode.Bucketed), Share(BatchMode.Packed));
    }
}
