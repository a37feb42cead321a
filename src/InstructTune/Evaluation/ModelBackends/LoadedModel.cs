using InstructTune.Evaluation.Metrics;
using InstructTune.Models.Inference;
using InstructTune.Tokenizers;

namespace InstructTune.Evaluation.ModelBackends;

/// <summary>
/// The one "load model + adapter + tokenizer + prompt format" path of every inference command (eval, generate, score, IFEval,
/// quickstart's evaluation, serve): a checkpoint folder opened for inference, with an optional PEFT adapter
/// (LoRA, DoRA, IA3 through <see cref="Peft.PeftRegistry"/>) attached unmerged, and the tokenizer beside it.
/// Every failure to open becomes an <see cref="EvalInputException"/> (an InputException: one line, exit code 2)
/// that names the folder and what is wrong with it, never a CLI flag.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private readonly ITokenizer? _tokenizer;

    public InferenceModel Model { get; }
    public string Directory { get; }
    public string? AdapterDirectory { get; }
    public bool HasTokenizer => _tokenizer != null;

    /// <summary>The folder's tokenizer; refuses (naming the folder) when it has none.</summary>
    public ITokenizer Tokenizer => _tokenizer
        ?? throw new EvalInputException($"model folder {Directory}: no tokenizer (tokenizer.json, tokenizer.model or spiece.model) to encode text with");

    private LoadedModel(InferenceModel model, ITokenizer? tokenizer, string dir, string? adapterDir)
    {
        Model = model; _tokenizer = tokenizer; Directory = dir; AdapterDirectory = adapterDir;
    }

    /// <param name="requireTokenizer">false: a folder without tokenizer files opens (token-id prompts); a broken one still fails.</param>
    public static LoadedModel Load(string modelDir, string? adapterDir = null, bool requireTokenizer = true)
    {
        if (!System.IO.Directory.Exists(modelDir)) throw new EvalInputException($"model folder {modelDir}: not found");
        ITokenizer? tokenizer = null;
        if (requireTokenizer || HasTokenizerFiles(modelDir))
        {
            try { tokenizer = TokenizerLoader.Load(modelDir); }
            catch (Exception ex) when (ex is TokenizerFormatException or IOException or InvalidDataException)
            {
                throw new EvalInputException($"model folder {modelDir}: cannot load the tokenizer: {ex.Message}");
            }
        }
        InferenceModel model;
        try { model = InferenceModel.Load(modelDir); }
        catch (Exception ex) when (ex is IOException or InvalidDataException or FormatException or System.Text.Json.JsonException or KeyNotFoundException or ArgumentException)
        {
            throw new EvalInputException($"model folder {modelDir}: cannot load the checkpoint: {ex.Message}");
        }
        // Marker tokens trained under LoRA/QLoRA: their rows and the extended tokenizer live in the adapter folder.
        if (adapterDir != null && File.Exists(Path.Combine(adapterDir, Models.InstructionAware.TrainableTokenRows.FileName)))
        {
            try
            {
                var rows = Models.InstructionAware.TrainableTokenRows.TryLoad(adapterDir, model.Config.HiddenSize)!.Value;
                model.AppendTokenRows(rows.FirstId, rows.Embed, rows.Head);
                if (requireTokenizer || HasTokenizerFiles(adapterDir)) tokenizer = TokenizerLoader.Load(adapterDir);
            }
            catch (Exception ex) when (ex is TokenizerFormatException or IOException or InvalidDataException or KeyNotFoundException or ArgumentException)
            {
                model.Dispose();
                throw new EvalInputException($"adapter folder {adapterDir}: {Models.InstructionAware.TrainableTokenRows.FileName} (added token rows) or its tokenizer: {ex.Message}");
            }
        }
        if (tokenizer != null && tokenizer.VocabSize > model.Config.VocabSize)
        {
            model.Dispose();
            throw new EvalInputException($"model folder {modelDir}: the tokenizer has {tokenizer.VocabSize} tokens, more than the model's vocab_size {model.Config.VocabSize}");
        }
        if (adapterDir is not null)
        {
            try
            {
                if (!System.IO.Directory.Exists(adapterDir)) throw new DirectoryNotFoundException("not found");
                Peft.PeftRegistry.ApplyTo(model, adapterDir);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or FormatException or System.Text.Json.JsonException or KeyNotFoundException or ArgumentException)
            {
                model.Dispose();
                throw new EvalInputException($"adapter folder {adapterDir}: {ex.Message}");
            }
        }
        // Instruction-aware variants live beside the adapter (LoRA runs) or the model (full fine-tuning).
        string iaDir = adapterDir != null && File.Exists(Path.Combine(adapterDir, Models.InstructionAware.InstructionAwareFile.FileName)) ? adapterDir : modelDir;
        try
        {
            if (Models.InstructionAware.InstructionAwareFile.TryLoad(iaDir, model.Config) is { } ia) model.ApplyInstructionAware(ia);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or FormatException or KeyNotFoundException or ArgumentException)
        {
            model.Dispose();
            throw new EvalInputException($"{(iaDir == modelDir ? "model" : "adapter")} folder {iaDir}: {ex.Message}");
        }
        return new LoadedModel(model, tokenizer, modelDir, adapterDir);
    }

    /// <summary>
    /// The prompt format to talk to this model with: what the adapter (else the model folder) recorded in
    /// instructtune.json when it was trained, unless <paramref name="template"/> names another (used, with a warning
    /// when it differs from the record); <paramref name="fallback"/> when nothing is recorded. See
    /// <see cref="PromptFormatter.ForModel"/>.
    /// </summary>
    public PromptFormatter PromptFormat(string? template, Action<string>? warn = null, string fallback = "auto") =>
        PromptFormatter.ForModel(template, Directory, AdapterDirectory, warn, fallback);

    private static bool HasTokenizerFiles(string dir) =>
        new[] { "tokenizer.json", "tokenizer.model", "spiece.model" }.Any(f => File.Exists(Path.Combine(dir, f)));

    public void Dispose() => Model.Dispose();
}
