// Rewrites a checkpoint folder in another float dtype and/or shard size, one tensor in memory at a time;
// integer tensors are copied unchanged, and the folder's other files (tokenizer, generation config) are copied.
using InstructTune.Checkpoints;

namespace InstructTune.Models;

public static class CheckpointConverter
{
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
            else
                tensors.Add(new TensorToWrite(name, info.DType, info.Shape, () => file.Bytes(info).ToArray()));
        }
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(src))
        {
            string n = Path.GetFileName(f);
            if (n == "config.json" || n.EndsWith(".safetensors") || n == CheckpointFolder.IndexFile) continue;
            File.Copy(f, Path.Combine(dst, n), overwrite: true);
        }
        SafetensorsWriter.WriteCheckpoint(dst, tensors, maxShardBytes);
        (config with { TorchDtype = LlamaCheckpoint.TorchDtypeName(dtype) }).Save(Path.Combine(dst, "config.json"));
    }
}
