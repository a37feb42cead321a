// Reads tests/fixtures/models/<name>/expected.json written by tools/golden/models_make.py (PyTorch reference).
using System.Text.Json;

namespace InstructTune.Tests.Models;

public sealed record GoldenSequence(int[] Ids, float[] Logits, double[] NextTokenLogprobs, double? Loss);
public sealed record GoldenGreedy(int[] PromptIds, int[] GeneratedIds);

public sealed class GoldenFixture
{
    public required GoldenSequence[] Sequences { get; init; }
    public required GoldenGreedy[] Greedy { get; init; }

    public static readonly string[] Models =
    [
        "llama_gqa_f32", "llama_gqa_bf16", "qwen2_tied_f32", "qwen2_tied_bf16",
        "mistral_sw_f32", "mistral_sw_bf16", "llama3_rope_f32", "llama3_rope_bf16",
    ];

    public static IEnumerable<object[]> ModelCases() => Models.Select(m => new object[] { m });

    public static string Dir(string name) => TestPaths.Fixtures("models", name);

    public static GoldenFixture Load(string expectedPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(expectedPath));
        var root = doc.RootElement;
        int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
        return new GoldenFixture
        {
            Sequences = root.GetProperty("sequences").EnumerateArray().Select(s => new GoldenSequence(
                Ints(s.GetProperty("ids")),
                s.GetProperty("logits").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(x => x.GetSingle())).ToArray(),
                s.GetProperty("next_token_logprobs").EnumerateArray().Select(x => x.GetDouble()).ToArray(),
                s.GetProperty("loss").ValueKind == JsonValueKind.Null ? null : s.GetProperty("loss").GetDouble())).ToArray(),
            Greedy = root.GetProperty("greedy").EnumerateArray().Select(g => new GoldenGreedy(
                Ints(g.GetProperty("prompt_ids")), Ints(g.GetProperty("generated_ids")))).ToArray(),
        };
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - actual[i]);
            if (!(d <= worst)) { worst = d; at = i; }
        }
        if (!(worst <= tol))
            Assert.Fail($"{what}: max abs diff {worst:g4} at {at} (expected {expected[at]}, got {actual[at]}) > {tol}");
    }
}
