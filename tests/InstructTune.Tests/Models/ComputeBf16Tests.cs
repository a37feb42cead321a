// itune score|generate --compute bf16: prompt matmuls in bf16 (activations rounded, float32 accumulation), on
// oneDNN where it loads and on the managed kernel when forced, against PyTorch's float32 goldens within the
// stated bf16 tolerance — and visibly not the float32 path (the option is not ignored).
using System.Text.Json;
using InstructTune.Cli;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Native;
using InstructTune.Tests.Checkpoints;

namespace InstructTune.Tests.Models;

[Collection("Console")]
public class ComputeBf16Tests
{
    /// <summary>Stated tolerance of bf16 compute on the tiny golden models: next-token log-probabilities within
    /// 0.05 + 2 % of |logprob| of PyTorch's float32 ones (bf16 keeps 8 significant bits of every activation, and of
    /// every weight of a float32 checkpoint, entering a matmul: about 0.4 % relative per product).</summary>
    private static double Tolerance(double golden) => 0.05 + 0.02 * Math.Abs(golden);

    private static (int Rc, string Out, string Err) Run(params string[] args) => CliCapture.Run(args);

    private static double[][] Score(string dir, string input, string compute, TempDir tmp)
    {
        var (rc, _, err) = Run("score", "--model", dir, "--input", input, "--output", tmp["out.jsonl"], "--compute", compute);
        Assert.True(rc == 0, err);
        return File.ReadAllLines(tmp["out.jsonl"]).Select(l =>
        {
            using var d = JsonDocument.Parse(l);
            return d.RootElement.GetProperty("next_token_logprobs").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        }).ToArray();
    }

    [Theory]
    [InlineData("mistral_sw_bf16")]
    [InlineData("llama_gqa_f32")]
    public void Score_with_bf16_compute_is_within_tolerance_of_pytorch_float32_on_every_backend(string model)
    {
        using var tmp = new TempDir();
        string dir = GoldenFixture.Dir(model);
        var g = GoldenFixture.Load(Path.Combine(dir, "expected.json"));
        File.WriteAllLines(tmp["in.jsonl"], g.Sequences.Select(s => JsonSerializer.Serialize(new { ids = s.Ids })));
        var f32 = Score(dir, tmp["in.jsonl"], "float32", tmp);
        var saved = Gemm.Bf16Backend;
        var backends = OneDnn.IsAvailable ? new[] { Bf16GemmBackend.Managed, Bf16GemmBackend.OneDnn } : [Bf16GemmBackend.Managed];
        var results = new List<double[][]>();
        try
        {
            foreach (var backend in backends)
            {
                Gemm.Bf16Backend = backend;
                var bf16 = Score(dir, tmp["in.jsonl"], "bf16", tmp);
                double maxFromF32 = 0;
                for (int i = 0; i < bf16.Length; i++)
                    for (int t = 0; t < bf16[i].Length; t++)
                    {
                        double golden = g.Sequences[i].NextTokenLogprobs[t];
                        Assert.True(Math.Abs(bf16[i][t] - golden) <= Tolerance(golden),
                            $"{model} {backend}: seq {i} pos {t}: bf16 logprob {bf16[i][t]} vs PyTorch float32 {golden}");
                        maxFromF32 = Math.Max(maxFromF32, Math.Abs(bf16[i][t] - f32[i][t]));
                    }
                // Sequences of 8+ tokens take the GEMM path: bf16 rounding must show there.
                Assert.True(maxFromF32 > 1e-6, $"{model} {backend}: --compute bf16 gave the float32 numbers");
                results.Add(bf16);
            }
        }
        finally { Gemm.Bf16Backend = saved; }
        // oneDNN and the managed kernel compute the same bf16 products; only float32 summation order differs.
        if (results.Count == 2)
            for (int i = 0; i < results[0].Length; i++)
                for (int t = 0; t < results[0][i].Length; t++)
                    Assert.True(Math.Abs(results[0][i][t] - results[1][i][t]) <= 1e-3, $"{model}: managed vs oneDNN at seq {i} pos {t}");
    }

    [Fact]
    public void A_bad_compute_value_is_refused_naming_the_option()
    {
        string dir = GoldenFixture.Dir("llama_gqa_f32");
        var (rc, _, err) = Run("generate", "--model", dir, "--prompt-ids", "3,4,5", "--compute", "fp8");
        Assert.Equal(2, rc);
        Assert.Contains("--compute 'fp8'", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void Generate_with_bf16_compute_runs_greedy()
    {
        string dir = GoldenFixture.Dir("llama3_rope_bf16");
        var g = GoldenFixture.Load(Path.Combine(dir, "expected.json"));
        var gr = g.Greedy[0];
        var (rc, output, err) = Run("generate", "--model", dir, "--prompt-ids", string.Join(",", gr.PromptIds),
            "--max-new-tokens", gr.GeneratedIds.Length.ToString(), "--ignore-eos", "--json", "--compute", "bf16");
        Assert.True(rc == 0, err);
        using var d = JsonDocument.Parse(output);
        // Greedy ids may differ from float32 where two logits are within bf16 rounding, so only the count is
        // checked here; the numbers are checked by the score test above.
        var ids = d.RootElement.GetProperty("generated_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        Assert.Equal(gr.GeneratedIds.Length, ids.Length);
    }
}
