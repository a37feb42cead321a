using InstructTune.Data.Loading;
using InstructTune.Data.Templating;

namespace InstructTune.Data.Pipeline;

/// <summary>One input dataset of a prepare run.</summary>
/// <param name="Split">Split of a Hugging Face dataset folder (data/&lt;split&gt;-0000x-of-0000n.parquet).</param>
public sealed record DataSource(string Path, DataFormat Format, string? Fields = null, string? Task = null, string Split = "train");

/// <summary>
/// Settings of <c>itune prepare</c>. Everything that changes the tokenized output is part of the cache key
/// (<see cref="CacheSettings"/>); <see cref="OutDir"/>, <see cref="Force"/>, <see cref="ShardTokens"/> and
/// <see cref="Threads"/> are not. Threads &gt; 1 (0 = one per core) tokenizes in parallel and needs a thread-safe
/// tokenizer, which every tokenizer from TokenizerLoader is.
/// </summary>
public sealed record PrepareOptions(
    IReadOnlyList<DataSource> Sources,
    string? TokenizerPath,
    string Template,
    string OutDir,
    int MaxSeqLen = 2048,
    bool Pack = false,
    bool SkipInvalid = false,
    bool TrainOnInputs = false,
    bool Dedup = true,
    double NearDupJaccard = 0,
    int BatchSize = 8,
    bool Force = false,
    long ShardTokens = 1 << 22,
    int Threads = 0,
    PromptFormat? Prompt = null,
    TooLongPolicy TooLong = TooLongPolicy.Truncate,
    DataTransforms? Transforms = null)
{
    /// <summary>The prompt format: <see cref="Prompt"/> when set, else the built-in or format string <see cref="Template"/>.</summary>
    public PromptFormat ResolvePrompt() => Prompt ?? PromptFormat.Resolve(Template, TokenizerPath is { } t && (Directory.Exists(t) || File.Exists(t)) ? t : null);

    public IReadOnlyDictionary<string, string> CacheSettings => new SortedDictionary<string, string>(StringComparer.Ordinal)
    {
        ["formats"] = string.Join(",", Sources.Select(s => $"{s.Format}:{s.Fields}:{s.Task}:{s.Split}")),
        ["template"] = Prompt == null ? Template : $"{Prompt.Spec}|{Prompt.TrainOn}|{Prompt.TrainOnEos}|{(Prompt.ChatTemplate is { } c ? InstructTune.Data.Cache.CacheManifest.Sha256OfText(c.Source) : "")}"
            + (Prompt?.Markers is { } m ? "|markers:" + string.Join("\u0001", m) + "|truncation:marker_pairs" : ""),   // caches cut before pairs were kept are stale
        ["too_long"] = TooLong.ToString(),
        ["transforms"] = Transforms?.Key ?? "",
        ["max_seq_len"] = MaxSeqLen.ToString(),
        ["skip_invalid"] = SkipInvalid.ToString(),
        ["train_on_inputs"] = TrainOnInputs.ToString(),
        ["dedup"] = Dedup.ToString(),
        ["near_dup"] = NearDupJaccard.ToString(System.Globalization.CultureInfo.InvariantCulture),

        ["pack"] = Pack.ToString(),
        ["format_version"] = "2",
    };
}
