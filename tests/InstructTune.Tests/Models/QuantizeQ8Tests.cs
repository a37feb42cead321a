// itune score|generate --quantize q8_0: every linear and the LM head held as llama.cpp's q8_0 at load; the
// log-probabilities stay within the stated q8_0 tolerance of PyTorch's float32 goldens and differ from float32
// (the option is not ignored); bad values and the bf16 combination are refused with exit code 2.
using System.Text.Json;
using InstructTune.Cli;
using InstructTune.Models.Inference;
using InstructTune.Tests.Checkpoints;

namespace InstructTune.Tests.Models;

[Collection("Console")]
public class QuantizeQ8Tests
{
    private static (int Rc, string Out, string Err) Run(params string[] args) => CliCapture.Run(args);

    [Theory]
    [InlineData("llama_gqa_f32")]
    [InlineData("llama3_rope_bf16")]
    public void Score_on_q8_0_weights_is_within_tolerance_of_pytorch_float32(string model)
    {
        using var tmp = new TempDir();
        string dir = GoldenFixture.Dir(model);
        var g = GoldenFixture.Load(Path.Combine(dir, "expected.json"));
        File.WriteAllLines(tmp["in.jsonl"], g.Sequences.Select(s => JsonSerializer.Serialize(new { ids = s.Ids })));
        var (rc, _, err) = Run("score", "--model", dir, "--input", tmp["in.jsonl"], "--output", tmp["out.jsonl"], "--quantize", "q8_0");
        Assert.True(rc == 0, err);
        AssertNearPyTorchFloat32(tmp["out.jsonl"], g, model);
    }

    /// <summary>`itune score` output on q8_0 weights against the PyTorch float32 golden: within the stated tolerance
    /// (8-bit weights, and in decode 8-bit activations, move a logprob by ~1 %), and not the float32 numbers.</summary>
    internal static void AssertNearPyTorchFloat32(string scoreOutput, GoldenFixture g, string label)
    {
        var lines = File.ReadAllLines(scoreOutput);
        double maxDiff = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            using var d = JsonDocument.Parse(lines[i]);
            var lp = d.RootElement.GetProperty("next_token_logprobs").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            for (int t = 0; t < lp.Length; t++)
            {
                double golden = g.Sequences[i].NextTokenLogprobs[t], diff = Math.Abs(lp[t] - golden);
                maxDiff = Math.Max(maxDiff, diff);
                Assert.True(diff <= 0.05 + 0.02 * Math.Abs(golden), $"{label} seq {i} pos {t}: q8_0 {lp[t]} vs PyTorch float32 {golden}");
            }
        }
        Assert.True(maxDiff > 1e-6, $"{label}: q8_0 gave the float32 numbers");
    }

    [Fact]
    public void Generate_on_q8_0_decodes_and_holds_fewer_bytes()
    {
        string dir = GoldenFixture.Dir("llama_gqa_f32");
        var (rc, output, err) = Run("generate", "--model", dir, "--prompt-ids", "3,4,5,6", "--max-new-tokens", "6", "--ignore-eos", "--json", "--quantize", "q8_0");
        Assert.True(rc == 0, err);
        using (var d = JsonDocument.Parse(output)) Assert.Equal(6, d.RootElement.GetProperty("generated_ids").GetArrayLength());
        using var m = InferenceModel.Load(dir);
        long before = m.WeightBytes;
        m.QuantizeQ8_0();
        Assert.True(m.WeightBytes < before * 0.5, $"q8_0 holds {m.WeightBytes} bytes against float32's {before}");
    }

    [Fact]
    public void Bad_values_and_bf16_with_q8_0_are_refused()
    {
        string dir = GoldenFixture.Dir("llama_gqa_f32");
        var (rc, _, err) = Run("generate", "--model", dir, "--prompt-ids", "3,4", "--quantize", "q4");
        Assert.Equal(2, rc);
        Assert.Contains("--quantize 'q4'", err);
        (rc, _, err) = Run("generate", "--model", dir, "--prompt-ids", "3,4", "--quantize", "q8_0", "--compute", "bf16");
        Assert.Equal(2, rc);
        Assert.Contains("--compute bf16 does not apply", err);
    }
}
