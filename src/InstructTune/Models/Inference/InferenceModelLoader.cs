// Loading an InferenceModel from a Hugging Face checkpoint folder by parameter name, with shapes checked
// against config.json and the tied lm_head falling back to model.embed_tokens.weight.
using InstructTune.Checkpoints;

namespace InstructTune.Models.Inference;

public sealed partial class InferenceModel
{
    /// <summary>Opens config.json and the safetensors (single or sharded) in <paramref name="dir"/>.</summary>
    public static InferenceModel Load(string dir)
    {
        var config = LlamaConfig.Load(dir);
        var ckpt = new CheckpointFolder(dir);
        try { return Load(config, ckpt); }
        catch { ckpt.Dispose(); throw; }
    }

    /// <summary>Builds the model over an open checkpoint, which it then owns.</summary>
    public static InferenceModel Load(LlamaConfig c, CheckpointFolder ckpt)
    {
        int D = c.HiddenSize, F = c.IntermediateSize, hd = c.HeadDim, V = c.VocabSize;
        int qDim = c.NumAttentionHeads * hd, kvDim = c.NumKeyValueHeads * hd;
        var used = new HashSet<string>();

        WeightMatrix Mat(string name, int rows, int cols)
        {
            var (f, info) = ckpt.Find(name);
            used.Add(name);
            // q8_0 blocks (U8) check their own byte shape in FromCheckpoint.
            if (info.DType != DType.U8 && (info.Shape.Length != 2 || info.Shape[0] != rows || info.Shape[1] != cols))
                throw new InvalidDataException($"{f.Path}: tensor \"{name}\" has shape [{string.Join(",", info.Shape)}], config.json implies [{rows},{cols}]");
            return WeightMatrix.FromCheckpoint(f, info, rows, cols);
        }
        float[] Vec(string name, int n)
        {
            var (f, info) = ckpt.Find(name);
            used.Add(name);
            if (info.Shape.Length != 1 || info.Shape[0] != n)
                throw new InvalidDataException($"{f.Path}: tensor \"{name}\" has shape [{string.Join(",", info.Shape)}], config.json implies [{n}]");
            return f.ReadF32(name);
        }
        LinearWeights Lin(string p, int o, int i, bool bias) => new(Mat(p + ".weight", o, i), bias ? Vec(p + ".bias", o) : null);

        var embed = Mat("model.embed_tokens.weight", V, D);
        var layers = new DecoderLayerWeights[c.NumHiddenLayers];
        bool qkvBias = c.AttentionBias || c.QkvBias;
        for (int l = 0; l < layers.Length; l++)
        {
            string p = $"model.layers.{l}.";
            layers[l] = new DecoderLayerWeights
            {
                InputNorm = Vec(p + "input_layernorm.weight", D),
                PostAttentionNorm = Vec(p + "post_attention_layernorm.weight", D),
                Q = Lin(p + "self_attn.q_proj", qDim, D, qkvBias),
                K = Lin(p + "self_attn.k_proj", kvDim, D, qkvBias),
                V = Lin(p + "self_attn.v_proj", kvDim, D, qkvBias),
                O = Lin(p + "self_attn.o_proj", D, qDim, c.AttentionBias),
                Gate = Lin(p + "mlp.gate_proj", F, D, c.MlpBias),
                Up = Lin(p + "mlp.up_proj", F, D, c.MlpBias),
                Down = Lin(p + "mlp.down_proj", D, F, c.MlpBias),
            };
        }
        var norm = Vec("model.norm.weight", D);
        // A tied lm_head is absent from HF files; an untied one that is missing is an error.
        WeightMatrix head = ckpt.Contains("lm_head.weight") ? Mat("lm_head.weight", V, D)
            : c.TieWordEmbeddings ? embed
            : throw new InvalidDataException($"{ckpt.Directory}: lm_head.weight is missing and tie_word_embeddings is false");
        // A tied checkpoint may still carry lm_head.weight (some exporters write it); that one is expected.
        if (c.TieWordEmbeddings && ckpt.Contains("lm_head.weight")) used.Add("lm_head.weight");
        ckpt.RefuseUnexpected(used);
        var unused = ckpt.Names.Where(n => !used.Contains(n)).OrderBy(n => n).ToList();
        return new InferenceModel(c, embed, head, norm, layers, ckpt, unused);
    }
}
