using InstructTune.Evaluation.Metrics;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Tokenizers;

namespace InstructTune.Evaluation.ModelBackends;

/// <summary>
/// A checkpoint folder opened for evaluation: the model (with an optional LoRA adapter attached unmerged) and the
/// tokenizer beside it. Every failure to open becomes an <see cref="EvalInputException"/> that names the folder
/// and what is wrong with it, so the CLI can print one line and exit non-zero.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    public InferenceModel Model { get; }
    public ITokenizer Tokenizer { get; }
    public string Directory { get; }
    public string? AdapterDirectory { get; }

    private LoadedModel(InferenceModel model, ITokenizer tokenizer, string dir, string? adapterDir)
    {
        Model = model; Tokenizer = tokenizer; Directory = dir; AdapterDirectory = adapterDir;
    }

    public static LoadedModel Load(string modelDir, string? adapterDir = null)
    {
        if (!System.IO.Directory.Exists(modelDir)) throw new EvalInputException($"--model {modelDir}: folder not found");
        ITokenizer tokenizer;
        try { tokenizer = TokenizerLoader.Load(modelDir); }
        catch (Exception ex) when (ex is TokenizerFormatException or IOException or InvalidDataException)
        {
            throw new EvalInputException($"--model {modelDir}: cannot load the tokenizer: {ex.Message}");
        }
        InferenceModel model;
        try { model = InferenceModel.Load(modelDir); }
        catch (Exception ex) when (ex is IOException or InvalidDataException or FormatException or System.Text.Json.JsonException or KeyNotFoundException or ArgumentException)
        {
            throw new EvalInputException($"--model {modelDir}: cannot load the checkpoint: {ex.Message}");
        }
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            model.Dispose();
            throw new EvalInputException($"--model {modelDir}: the tokenizer has {tokenizer.VocabSize} tokens, more than the model's vocab_size {model.Config.VocabSize}");
        }
        if (adapterDir is not null)
        {
            try
            {
                if (!System.IO.Directory.Exists(adapterDir)) throw new DirectoryNotFoundException("folder not found");
                Peft.PeftRegistry.ApplyTo(model, adapterDir);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or FormatException or System.Text.Json.JsonException or KeyNotFoundException or ArgumentException)
            {
                model.Dispose();
                throw new EvalInputException($"--adapter {adapterDir}: {ex.Message}");
            }
        }
        return new LoadedModel(model, tokenizer, modelDir, adapterDir);
    }

    public void Dispose() => Model.Dispose();
}
