// ≥ 1,000 random mutations of a valid safetensors file: every structural fault (truncation, header length,
// offsets, dtypes, shapes) must end in InvalidDataException; random byte garbage in the header must end in
// InvalidDataException or a file that opens and reads completely. Never an access violation, hang or OOM.
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;

namespace InstructTune.Tests.Checkpoints;

public class SafetensorsFuzzTests
{
    private enum Kind { Truncate, HeaderLength, EndOffset, DType, Shape, Garbage }

    [Fact]
    public void Mutated_files_fail_cleanly()
    {
        using var tmp = new TempDir();
        string valid = tmp["valid.safetensors"];
        SafetensorsWriter.Write(valid, SafetensorsTests.Sample());
        var original = File.ReadAllBytes(valid);
        ulong n = BitConverter.ToUInt64(original, 0);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(original, 8, (int)n))!.AsObject();
        var names = header.Select(p => p.Key).Where(k => k != "__metadata__").ToArray();
        var rng = new Random(20261121);
        var counts = new Dictionary<string, int>();
        var sw = Stopwatch.StartNew();
        string path = tmp["m.safetensors"];
        for (int iter = 0; iter < 1200; iter++)
        {
            var kind = (Kind)(iter % 6);
            byte[] bytes = Mutate(kind, original, header, names, n, rng);
            File.WriteAllBytes(path, bytes);
            bool mustFail = kind != Kind.Garbage;
            try
            {
                using var f = SafetensorsFile.Open(path);
                foreach (var t in f.Tensors.Values) { var span = f.Bytes(t); if (t.DType.IsFloat()) f.ReadF32(t.Name); }
                Assert.False(mustFail, $"mutation {iter} ({kind}) was accepted");
                counts["accepted " + kind] = counts.GetValueOrDefault("accepted " + kind) + 1;
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(path, e.Message);
                counts[kind.ToString()] = counts.GetValueOrDefault(kind.ToString()) + 1;
            }
        }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"fuzzing took {sw.Elapsed}");
        Assert.Equal(1200, counts.Values.Sum());
        Assert.True(counts.GetValueOrDefault("Garbage") > 100, string.Join(", ", counts));
    }

    private static byte[] Mutate(Kind kind, byte[] original, JsonObject header, string[] names, ulong n, Random rng)
    {
        switch (kind)
        {
            case Kind.Truncate:
                return original[..rng.Next(0, original.Length)];
            case Kind.HeaderLength:
            {
                var b = (byte[])original.Clone();
                ulong v = rng.Next(4) switch
                {
                    0 => (ulong)rng.NextInt64(0, (long)n - 8),          // shorter than the JSON (not just its padding)
                    1 => n + (ulong)rng.Next(1, 64),                     // runs into the data
                    2 => (ulong)rng.NextInt64(original.Length, long.MaxValue), // past the file
                    _ => ulong.MaxValue - (ulong)rng.Next(1000),
                };
                BitConverter.GetBytes(v).CopyTo(b, 0);
                return b;
            }
            case Kind.Garbage:
            {
                var b = (byte[])original.Clone();
                int count = rng.Next(1, 4);
                for (int i = 0; i < count; i++) b[8 + rng.Next((int)n)] = (byte)rng.Next(256);
                return b;
            }
        }
        var h = header.DeepClone().AsObject();
        var entry = h[names[rng.Next(names.Length)]]!.AsObject();
        switch (kind)
        {
            case Kind.EndOffset:
            {
                long end = entry["data_offsets"]![1]!.GetValue<long>();
                long e2;
                do e2 = rng.Next(3) == 0 ? rng.NextInt64(0, long.MaxValue) : end + rng.Next(-16, 17); while (e2 == end || e2 < 0);
                entry["data_offsets"]![1] = e2;
                break;
            }
            case Kind.DType:
            {
                string old = entry["dtype"]!.GetValue<string>();
                string[] choices = ["F8", "Q4_0", "", "f32", "F128", "U64X", "F64", "U8", "I32", "BF16", "F32"];
                string d;
                do d = choices[rng.Next(choices.Length)]; while (DTypes.Parse(d) is { } p && p.Size() == DTypes.Parse(old)!.Value.Size());
                entry["dtype"] = d;
                break;
            }
            case Kind.Shape:
            {
                var shape = entry["shape"]!.AsArray();
                if (shape.Count == 0 || rng.Next(4) == 0) shape.Add(rng.Next(2, 1000));
                else
                {
                    int i = rng.Next(shape.Count);
                    long old = shape[i]!.GetValue<long>(), v;
                    do v = rng.Next(2) == 0 ? rng.Next(0, 50) : rng.NextInt64(0, long.MaxValue); while (v == old);
                    shape[i] = v;
                }
                break;
            }
        }
        var json = Encoding.UTF8.GetBytes(h.ToJsonString());
        int dataStart = 8 + (int)n;
        var result = new byte[8 + json.Length + original.Length - dataStart];
        BitConverter.GetBytes((ulong)json.Length).CopyTo(result, 0);
        json.CopyTo(result, 8);
        Array.Copy(original, dataStart, result, 8 + json.Length, original.Length - dataStart);
        return result;
    }
}
