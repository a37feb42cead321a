// Moving weights between a Hugging Face checkpoint folder and the trainable LlamaModel, by parameter name.
// Loading converts bf16/f16 to float32 (training computes and stores in float32); a tied lm_head is absent
// from HF files and shares embed_tokens. Saving writes config.json and safetensors (bf16 or f32, sharded).
using InstructTune.Checkpoints;

namespace InstructTune.Models;

public static class LlamaCheckpoint
{
    /// <summary>Reads config.json and the weights in <paramref name="dir"/> into a new LlamaModel.</summary>
    public static LlamaModel Load(string dir) => Load(dir, 0);

    /// <summary>
    /// Reads the checkpoint into a model whose vocabulary is resized to <paramref name="vocabSize"/> (≥ the checkpoint's;
    /// 0 = as stored): embed_tokens and an untied lm_head get the extra rows, each the mean of the stored rows, as
    /// transformers' resize_token_embeddings(mean_resizing=True) does when its N(μ, 10⁻⁹·Σ) draw is not taken (we take
    /// the mean itself: deterministic, within ~3·10⁻⁵ σ of transformers' draw). Logits over the stored vocabulary are
    /// unchanged. Instruction marker tokens (MarkerTokens.cs) use it.
    /// </summary>
    public static LlamaModel Load(string dir, int vocabSize)
    {
        var config = LlamaConfig.Load(dir);
        if (vocabSize != 0 && vocabSize < config.VocabSize)
            throw new ArgumentException($"{dir}: cannot shrink the vocabulary from {config.VocabSize} to {vocabSize}");
        int stored = config.VocabSize;
        var model = new LlamaModel(vocabSize > stored ? config with { VocabSize = vocabSize } : config);
        using var ckpt = new CheckpointFolder(dir);
        LoadInto(model, ckpt, stored);
        return model;
    }

    /// <summary>The rows [stored, V) of a (V, D) table set to the mean of rows [0, stored) (accumulated in double).</summary>
    public static void FillMeanRows(Span<float> table, int stored, int D)
    {
        int V = table.Length / D;
        if (stored >= V) return;
        var mean = new double[D];
        for (int r = 0; r < stored; r++)
            for (int d = 0; d < D; d++) mean[d] += table[r * D + d];
        for (int r = stored; r < V; r++)
            for (int d = 0; d < D; d++) table[r * D + d] = (float)(mean[d] / stored);
    }

    /// <summary>Sets every parameter of <paramref name="model"/> from the checkpoint; names and shapes must match
    /// (embed_tokens and lm_head may hold <paramref name="storedVocab"/> rows of a model resized past them).</summary>
    public static void LoadInto(LlamaModel model, CheckpointFolder ckpt, int storedVocab = 0)
    {
        var implied = new HashSet<string>(model.NamedParameters().Select(np => np.Item1), StringComparer.Ordinal);
        ckpt.RefuseUnexpected(implied);
        foreach (var (name, p) in model.NamedParameters())
        {
            string source = name;
            if (!ckpt.Contains(name))
            {
                if (name == "lm_head.weight" && model.Config.TieWordEmbeddings) continue;   // shares embed_tokens
                throw new InvalidDataException($"{ckpt.Directory}: checkpoint has no tensor \"{name}\"");
            }
            var (file, info) = ckpt.Find(source);
            if (info.DType == DType.U8 && file.Metadata.ContainsKey(Inference.WeightMatrix.Q8MetadataKey))
                throw new InvalidDataException($"{file.Path}: tensor \"{name}\" is q8_0 (a checkpoint for inference: generate, score, serve, export gguf); `itune convert --dtype float32` makes a float copy to train on");
            bool resized = storedVocab > 0 && storedVocab < model.Config.VocabSize && name is "model.embed_tokens.weight" or "lm_head.weight";
            if (resized && info.Shape is [var rows, var cols] && rows == storedVocab && cols == p.Size(1))
            {
                var full = new float[p.Length];
                file.ReadF32(name).CopyTo(full, 0);
                FillMeanRows(full, storedVocab, p.Size(1));
                p.Load(full);
                continue;
            }
            if (!info.Shape.SequenceEqual(p.Shape.Select(d => (long)d)))
                throw new InvalidDataException($"{file.Path}: tensor \"{name}\" has shape [{string.Join(",", info.Shape)}], the model expects [{string.Join(",", p.Shape)}]");
            p.Load(file.ReadF32(name));
        }
    }

    /// <summary>Writes config.json (torch_dtype = dtype) and the model's weights in HF layout into <paramref name="dir"/>.</summary>
    public static void Save(LlamaModel model, string dir, DType dtype = DType.F32, long maxShardBytes = long.MaxValue)
    {
        if (dtype is not (DType.F32 or DType.BF16 or DType.F16)) throw new ArgumentException($"cannot save weights as {dtype}");
        var tensors = new List<TensorToWrite>();
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in model.NamedParameters())
        {
            if (!seen.Add(p)) continue;                               // tied lm_head: written once, as embed_tokens
            if (name.StartsWith(InstructionAware.InstructionAwareModule.Name + ".", StringComparison.Ordinal)
                || name.StartsWith(InstructionAware.TrainableTokenRows.Name + ".", StringComparison.Ordinal)) continue; // their own file
            var param = p;
            tensors.Add(new TensorToWrite(name, dtype, p.Shape.Select(d => (long)d).ToArray(), () => DTypes.FromF32(dtype, param.ToArray())));
        }
        Directory.CreateDirectory(dir);
        (model.Config with { TorchDtype = TorchDtypeName(dtype) }).Save(Path.Combine(dir, "config.json"));
        SafetensorsWriter.WriteCheckpoint(dir, tensors, maxShardBytes);
        InstructionAware.InstructionAwareFile.Save(model, dir);       // instruction_aware.safetensors, when the model has variants
    }

    public static string TorchDtypeName(DType t) => t switch
    {
        DType.BF16 => "bfloat16", DType.F16 => "float16", _ => "float32",
    };

    public static DType ParseDtype(string s) => s switch
    {
        "float32" or "fp32" or "f32" => DType.F32,
        "bfloat16" or "bf16" => DType.BF16,
        "float16" or "fp16" or "f16" => DType.F16,
        _ => throw new ArgumentException($"unknown dtype \"{s}\" (float32, bfloat16, float16)"),
    };
}
