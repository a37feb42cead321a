// safetensors reader/writer: round trips of every float dtype, the header contract, sharded checkpoints,
// and bf16 rounding checked against hand-worked bit patterns (the values torch produces).
using System.Text;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;

namespace InstructTune.Tests.Checkpoints;

public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("itune-test-").FullName;
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}

public class SafetensorsTests
{
    internal static List<TensorToWrite> Sample() =>
    [
        TensorToWrite.FromF32("a.weight", DType.F32, [2, 3], [1, -2, 3.5f, 0, 1e-8f, -7]),
        TensorToWrite.FromF32("b.bias", DType.BF16, [4], [1f, 1.00390625f, 1.01171875f, -3.25f]),
        TensorToWrite.FromF32("c", DType.F16, [1, 2], [0.5f, -65504f]),
        new TensorToWrite("ids", DType.I64, [3], () => new long[] { 1, 2, 3 }.SelectMany(BitConverter.GetBytes).ToArray()),
    ];

    [Fact]
    public void Write_then_read_round_trips_values_shapes_and_metadata()
    {
        using var tmp = new TempDir();
        SafetensorsWriter.Write(tmp["m.safetensors"], Sample());
        Assert.Single(Directory.GetFiles(tmp.Path)); // no temp file left behind
        using var f = SafetensorsFile.Open(tmp["m.safetensors"]);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(0, f.DataOffset % 8);
        Assert.Equal([1, -2, 3.5f, 0, 1e-8f, -7], f.ReadF32("a.weight"));
        Assert.Equal([2L, 3L], f.Info("a.weight").Shape);
        // bf16: 1+2⁻⁸ is a tie and rounds to even (1.0); 1+3·2⁻⁸ rounds up to 1+2⁻⁶.
        Assert.Equal([1f, 1f, 1.015625f, -3.25f], f.ReadF32("b.bias"));
        Assert.Equal([0.5f, -65504f], f.ReadF32("c"));
        Assert.Equal(DType.I64, f.Info("ids").DType);
        Assert.Equal(2L, BitConverter.ToInt64(f.Bytes("ids")[8..16]));
        Assert.Throws<InvalidDataException>(() => f.ReadF32("ids"));
    }

    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.0f, 0xC000)]
    [InlineData(1.00390625f, 0x3F80)]     // tie → even
    [InlineData(1.01171875f, 0x3F82)]     // tie → even (up)
    [InlineData(3.4028235e38f, 0x7F80)]   // max float rounds to +inf, as torch does
    [InlineData(float.NegativeInfinity, 0xFF80)]
    public void Bf16_rounding_matches_torch(float f, int bits) => Assert.Equal((ushort)bits, DTypes.F32ToBf16(f));

    [Fact]
    public void Bf16_just_above_a_tie_rounds_up() =>
        Assert.Equal((ushort)0x3F81, DTypes.F32ToBf16(BitConverter.UInt32BitsToSingle(0x3F808001)));

    [Fact]
    public void Bf16_nan_stays_nan() => Assert.True(float.IsNaN(DTypes.Bf16ToF32(DTypes.F32ToBf16(float.NaN))));

    [Fact]
    public void Reads_a_file_written_by_the_python_reference_writer()
    {
        using var f = SafetensorsFile.Open(TestPaths.Fixtures("models", "llama_gqa_bf16", "model.safetensors"));
        var t = f.Info("model.embed_tokens.weight");
        Assert.Equal(DType.BF16, t.DType);
        Assert.Equal([96L, 64L], t.Shape);
        Assert.Equal("pt", f.Metadata["format"]);
    }

    [Fact]
    public void Sharded_checkpoint_round_trips_through_the_index()
    {
        using var tmp = new TempDir();
        var tensors = Enumerable.Range(0, 5).Select(i =>
            TensorToWrite.FromF32($"t{i}", DType.F32, [10], Enumerable.Range(0, 10).Select(j => (float)(i * 10 + j)).ToArray())).ToList();
        var files = SafetensorsWriter.WriteCheckpoint(tmp.Path, tensors, maxShardBytes: 100);
        Assert.Contains(CheckpointFolder.IndexFile, files);
        Assert.Equal(4, files.Count);  // five 40-byte tensors, 100-byte shards: 2 + 2 + 1, plus the index
        using var ck = new CheckpointFolder(tmp.Path);
        for (int i = 0; i < 5; i++) Assert.Equal((float)(i * 10 + 3), ck.ReadF32($"t{i}")[3]);
        var index = JsonNode.Parse(File.ReadAllText(tmp[CheckpointFolder.IndexFile]))!;
        Assert.Equal(200, index["metadata"]!["total_size"]!.GetValue<long>());
        Assert.Equal("model-00002-of-00003.safetensors", index["weight_map"]!["t2"]!.GetValue<string>());
    }

    [Fact]
    public void Index_naming_a_tensor_missing_from_its_shard_is_refused()
    {
        using var tmp = new TempDir();
        SafetensorsWriter.WriteCheckpoint(tmp.Path, Sample().Take(2).ToList(), maxShardBytes: 8);
        var idx = JsonNode.Parse(File.ReadAllText(tmp[CheckpointFolder.IndexFile]))!;
        idx["weight_map"]!["ghost"] = "model-00001-of-00002.safetensors";
        File.WriteAllText(tmp[CheckpointFolder.IndexFile], idx.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => new CheckpointFolder(tmp.Path));
        Assert.Contains("ghost", e.Message);
    }

    [Fact]
    public void Overlapping_spans_are_refused()
    {
        var header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        var e = Assert.Throws<InvalidDataException>(() => OpenBytes(Build(header, 16)));
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void Huge_header_length_is_refused_before_allocating()
    {
        var bytes = new byte[64];
        BitConverter.GetBytes(ulong.MaxValue - 3).CopyTo(bytes, 0);
        var e = Assert.Throws<InvalidDataException>(() => OpenBytes(bytes));
        Assert.Contains("header length", e.Message);
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "needs 12 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unknown dtype")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,80]}}", "past the data area")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "non-negative")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", "too many")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "data_offsets")]
    [InlineData("{\"a\":[1,2]}", "must be an object")]
    [InlineData("[1,2]", "JSON object")]
    [InlineData("{\"a\":", "well-formed")]
    public void Header_faults_are_named(string header, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => OpenBytes(Build(header, 16)));
        Assert.Contains(expected, e.Message);
    }

    internal static byte[] Build(string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BitConverter.GetBytes((ulong)h.Length).CopyTo(b, 0);
        h.CopyTo(b, 8);
        return b;
    }

    internal static void OpenBytes(byte[] bytes)
    {
        using var ms = new MemoryStream(bytes);
        SafetensorsFile.ReadHeader(ms, bytes.Length, "test.safetensors");
    }
}
