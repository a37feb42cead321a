// Rewrites a checkpoint folder in another float dtype and/or shard size, one tensor in memory at a time;
// integer tensors are copied unchanged, and the folder's other files (tokenizer, generation config) are copied.
// q8_0 (inference only: itune generate | score | serve | export gguf): every 2-D weight whose rows are a multiple of
// 32 values (embedding, projections, LM head) becomes ggml's q8_0 blocks — per row, blocks of 32 values stored as
// [IEEE half scale][32 × int8], the layout of block_q8_0 in ggml-common.h and of GGUF's Q8_0 tensors — written as a
// U8 tensor [rows, cols/32·34] under the weight's own name; norms, biases and other matrices stay float32. The
// safetensors metadata key "instructtune.q8_0" marks the file, so the loader maps those blocks in place and the
// decode kernel streams them as they are (1.0625 bytes per weight). Converting a q8_0 checkpoint back to a float
// dtype dequantises the blocks.
using InstructTune.Checkpoints;
using InstructTune.Engine.Quantization;
using InstructTune.Models.Inference;

namespace InstructTune.Models;

public static class CheckpointConverter
{
    /// <summary>"q8_0" or a float dtype name (LlamaCheckpoint.ParseDtype).</summary>
    public static void Convert(string src, string dst, string dtype, long maxShardBytes = long.MaxValue)
    {
        if (dtype.Trim().ToLowerInvariant() == "q8_0") ConvertQ8_0(src, dst, maxShardBytes);
        else Convert(src, dst, LlamaCheckpoint.ParseDtype(dtype), maxShardBytes);
    }

    public static void Convert(string src, string dst, DType dtype, long maxShardBytes = long.MaxValue)
    {
        var config = LlamaConfig.Load(src);
        using var ckpt = new CheckpointFolder(src);
        var tensors = new List<TensorToWrite>();
        foreach (var name in ckpt.Names.OrderBy(n => n, StringComparer.Ordinal))
        {
            var (file, info) = ckpt.Find(name);
            if (info.DType.IsFloat())
                tensors.Add(new TensorToWrite(name, dtype, info.Shape, () => DTypes.FromF32(dtype, file.ReadF32(name))));
            else if (IsQ8(file, info))
            {
                long[] shape = [info.Shape[0], info.Shape[1] / Q8_0.BlockBytes * Q8_0.BlockSize];
                tensors.Add(new TensorToWrite(name, dtype, shape, () =>
                {
                    var f = new float[shape[0] * shape[1]];
                    Q8_0.Dequantize(file.Bytes(info), f);
                    return DTypes.FromF32(dtype, f);
                }));
            }
            else
                tensors.Add(new TensorToWrite(name, info.DType, info.Shape, () => file.Bytes(info).ToArray()));
        }
        Write(src, dst, tensors, maxShardBytes, null);
        (config with { TorchDtype = LlamaCheckpoint.TorchDtypeName(dtype) }).Save(Path.Combine(dst, "config.json"));
    }

    /// <summary>A q8_0 checkpoint (see the file header); throws naming the tensor when nothing can be quantised.</summary>
    public static void ConvertQ8_0(string src, string dst, long maxShardBytes = long.MaxValue)
    {
        var config = LlamaConfig.Load(src);
        using var ckpt = new CheckpointFolder(src);
        var tensors = new List<TensorToWrite>();
        int quantised = 0;
        foreach (var name in ckpt.Names.OrderBy(n => n, StringComparer.Ordinal))
        {
            var (file, info) = ckpt.Find(name);
            if (IsQ8(file, info))
            {
                tensors.Add(new TensorToWrite(name, DType.U8, info.Shape, () => file.Bytes(info).ToArray()));
                quantised++;
            }
            else if (info.DType.IsFloat() && info.Shape.Length == 2 && info.Shape[1] % Q8_0.BlockSize == 0)
            {
                long[] shape = [info.Shape[0], info.Shape[1] / Q8_0.BlockSize * Q8_0.BlockBytes];
                tensors.Add(new TensorToWrite(name, DType.U8, shape, () =>
                {
                    var blocks = new byte[shape[0] * shape[1]];
                    Q8_0.Quantize(file.ReadF32(name), blocks);
                    return blocks;
                }));
                quantised++;
            }
            else if (info.DType.IsFloat())
                tensors.Add(new TensorToWrite(name, DType.F32, info.Shape, () => DTypes.FromF32(DType.F32, file.ReadF32(name))));
            else
                throw new InvalidDataException($"{file.Path}: tensor \"{name}\" has dtype {info.DType}; q8_0 conversion reads float checkpoints");
        }
        if (quantised == 0) throw new InvalidDataException($"{src}: no weight matrix has rows of a multiple of 32 values; nothing to hold as q8_0");
        Write(src, dst, tensors, maxShardBytes, new Dictionary<string, string>
        {
            [WeightMatrix.Q8MetadataKey] = "ggml block_q8_0: U8 weight tensors hold per row blocks of [f16 scale][32 x int8]",
        });
        // torch_dtype names the float tensors (norms, biases); the q8_0 weights are marked in the safetensors metadata.
        (config with { TorchDtype = "float32" }).Save(Path.Combine(dst, "config.json"));
    }

    private static bool IsQ8(SafetensorsFile file, TensorInfo info) =>
        info.DType == DType.U8 && info.Shape.Length == 2 && file.Metadata.ContainsKey(WeightMatrix.Q8MetadataKey);

    private static void Write(string src, string dst, List<TensorToWrite> tensors, long maxShardBytes, IReadOnlyDictionary<string, string>? metadata)
    {
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(src))
        {
            string n = Path.GetFileName(f);
            if (n == "config.json" || n.EndsWith(".safetensors") || n == CheckpointFolder.IndexFile) continue;
            File.Copy(f, Path.Combine(dst, n), overwrite: true);
        }
        SafetensorsWriter.WriteCheckpoint(dst, tensors, maxShardBytes, metadata);
    }
}
