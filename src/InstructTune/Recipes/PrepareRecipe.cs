using InstructTune.Data.Loading;
using InstructTune.Data.Pipeline;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Recipes;

/// <summary>
/// The prepare workflow: the recipe's data.* keys → validated, templated, tokenized, masked and cached shards
/// with stats.json (`itune prepare`). Training builds its data through <see cref="Options"/> too, so a cache
/// written by `prepare` with the same recipe is the one `train` reuses.
/// </summary>
public static class PrepareRecipe
{
    /// <summary>The tokenizer the recipe names: model.tokenizer, else the model folder.</summary>
    public static string TokenizerPath(TrainConfig c) =>
        !string.IsNullOrEmpty(c.Model.Tokenizer) ? c.Model.Tokenizer
        : !string.IsNullOrEmpty(c.Model.Path) ? c.Model.Path
        : throw new ConfigException("model.tokenizer (or model.path) is required: the tokenizer to prepare the data with", "model.tokenizer");

    /// <summary>The prepare folder: prepare.out, else &lt;checkpoint.output_dir&gt;/data (the one `train` reads).</summary>
    public static string OutDir(TrainConfig c) =>
        !string.IsNullOrEmpty(c.Prepare.Out) ? c.Prepare.Out : Path.Combine(c.Checkpoint.OutputDir, "data");

    /// <summary>The pipeline settings of a recipe; refuses a missing path or an unknown format naming the key.</summary>
    public static PrepareOptions Options(TrainConfig c, string? outDir = null)
    {
        var d = c.Data;
        if (string.IsNullOrEmpty(d.Path)) throw new ConfigException("data.path is required (a dataset file or folder)", "data.path");
        DataFormat format;
        try { format = DataFormats.Parse(d.Format); }
        catch (ArgumentException e) { throw new ConfigException("data.format: " + e.Message, "data.format"); }
        if (!File.Exists(d.Path) && !Directory.Exists(d.Path)) throw new ConfigException($"data.path: '{d.Path}' does not exist", "data.path");
        var source = new DataSource(d.Path, format, d.Fields.Length > 0 ? d.Fields : null, d.Task.Length > 0 ? d.Task : null);
        return new PrepareOptions([source], TokenizerPath(c), d.Template, outDir ?? OutDir(c), d.MaxSeqLen, d.Pack,
            d.SkipInvalid, d.TrainOnInputs, d.Dedup == DedupMode.Exact, d.NearDup, c.Prepare.BatchSize, c.Prepare.Force,
            Threads: c.Prepare.Threads);
    }

    public static PrepareResult Run(TrainConfig c, ITokenizer? tokenizer = null) => PreparePipeline.Run(Options(c), tokenizer);
}
