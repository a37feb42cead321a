// Trainable rows of added tokens over a frozen embedding (instruction marker tokens under LoRA/QLoRA), as PEFT's
// trainable tokens (trainable_token_indices) do for consecutive ids:
//   added_tokens.embed_tokens   (k, hidden)   the rows of ids [first, first + k) of model.embed_tokens.weight
//   added_tokens.lm_head        (k, hidden)   the same rows of an untied lm_head.weight (a tied one uses the embedding's)
// Forward: table = embed_tokens.weight with those rows replaced (Ops.OverrideRows), x = table[ids]; logits = h·headᵀ
// with head = lm_head.weight likewise (tied: the same table). The base rows stay frozen; the k rows train. They start as
// the resized model's rows (the mean rows, LlamaCheckpoint.Load(dir, vocabSize)), so attaching changes no logit.
// Saved beside the adapter as added_tokens.safetensors ("model.embed_tokens.weight" (k, hidden), "lm_head.weight"
// (k, hidden) untied; metadata first_id); LoadedModel appends them to the base model's tables at load.
using InstructTune.Checkpoints;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.InstructionAware;

public sealed class TrainableTokenRows : Module
{
    public const string Name = "added_tokens";
    public const string FileName = "added_tokens.safetensors";
    public const string FirstIdKey = "first_id";

    /// <summary>The first id the rows stand for.</summary>
    public int FirstId { get; }
    public Parameter Embed { get; }
    /// <summary>The untied lm_head's rows, or null (tied: the embedding's rows serve both).</summary>
    public Parameter? Head { get; }

    public TrainableTokenRows(LlamaModel model, int firstId)
    {
        var c = model.Config;
        int k = c.VocabSize - firstId, D = c.HiddenSize;
        if (k < 1 || firstId < 1) throw new ArgumentException($"added token rows [{firstId}, {c.VocabSize}) are empty");
        FirstId = firstId;
        Embed = RegisterParameter("embed_tokens", new Parameter(k, D));
        Embed.Load(model.Backbone.EmbedTokens.Weight.Span.Slice(firstId * D, k * D));
        if (!c.TieWordEmbeddings)
        {
            var head = model.LmHead as Linear ?? throw new ArgumentException("the lm_head is not a plain linear layer (weight storage or an adapter replaced it)");
            Head = RegisterParameter("lm_head", new Parameter(k, D));
            Head.Load(head.Weight.Span.Slice(firstId * D, k * D));
        }
    }

    /// <summary>Writes the rows into dir/added_tokens.safetensors.</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        var tensors = new List<TensorToWrite> { TensorToWrite.FromF32("model.embed_tokens.weight", DType.F32, [Embed.Size(0), Embed.Size(1)], Embed.ToArray()) };
        if (Head != null) tensors.Add(TensorToWrite.FromF32("lm_head.weight", DType.F32, [Head.Size(0), Head.Size(1)], Head.ToArray()));
        SafetensorsWriter.Write(Path.Combine(dir, FileName), tensors,
            new Dictionary<string, string> { [FirstIdKey] = FirstId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    /// <summary>dir/added_tokens.safetensors for a model of hidden size D: (first id, embedding rows, untied head rows or
    /// null), or null when the folder has none; a malformed file is refused naming the tensor or key.</summary>
    public static (int FirstId, float[] Embed, float[]? Head, int Count)? TryLoad(string dir, int D)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) return null;
        using var f = SafetensorsFile.Open(path);
        if (!f.Metadata.TryGetValue(FirstIdKey, out var s) || !int.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out int first) || first < 1)
            throw new InvalidDataException($"{path}: needs a positive metadata \"{FirstIdKey}\" (the id of the first row)");
        float[] Read(string name, out int rows)
        {
            var info = f.Info(name);
            if (info.Shape is not [var r, var cols] || cols != D || r < 1)
                throw new InvalidDataException($"{path}: tensor \"{name}\" has shape [{string.Join(",", info.Shape)}], the model needs [k,{D}]");
            rows = (int)r;
            return f.ReadF32(name);
        }
        foreach (var n in f.Tensors.Keys)
            if (n is not ("model.embed_tokens.weight" or "lm_head.weight")) throw new InvalidDataException($"{path}: unknown tensor \"{n}\"");
        var embed = Read("model.embed_tokens.weight", out int k);
        float[]? head = null;
        if (f.Tensors.ContainsKey("lm_head.weight"))
        {
            head = Read("lm_head.weight", out int kh);
            if (kh != k) throw new InvalidDataException($"{path}: tensor \"lm_head.weight\" has {kh} rows, \"model.embed_tokens.weight\" {k}");
        }
        return (first, embed, head, k);
    }
}
