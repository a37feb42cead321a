namespace InstructTune.Training.Config;

/// <summary>`itune prepare`: where the tokenized cache goes and how it is built (what it holds comes from data.*).</summary>
public sealed class PrepareSection
{
    [ConfigKey("Output folder of `itune prepare` (shards, manifest.json, stats.json, rejected.jsonl); empty = <checkpoint.output_dir>/data, the folder `train` reads.")]
    public string Out { get; set; } = "";
    [ConfigKey("Rebuild even when the cache manifest matches.")]
    public bool Force { get; set; }
    [ConfigKey("Rows per batch in the padding estimates that prepare prints.", Min = 1)]
    public int BatchSize { get; set; } = 8;
    [ConfigKey("Tokenizer threads (0 = one per core).", Min = 0)]
    public int Threads { get; set; }
}
