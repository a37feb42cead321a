using System.Text.Json;

namespace InstructTune.Engine.Tests;

/// <summary>Reads the JSON golden fixtures written by tools/golden/engine_*.py ({"shape": […], "data": […]}).</summary>
public static class Fixture
{
    public static JsonElement Load(string file) =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("engine", file))).RootElement;

    public static float[] Floats(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
    public static int[] Ints(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(x => x.GetInt32()).ToArray();
    public static int[] Shape(JsonElement t) => t.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray();

    /// <summary>Max |a − e| relative to max |e| — the norm-wise error used by the golden comparisons.</summary>
    public static double RelError(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxE = 0, maxD = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxE = Math.Max(maxE, Math.Abs(expected[i]));
            maxD = Math.Max(maxD, Math.Abs((double)expected[i] - actual[i]));
        }
        return maxE == 0 ? maxD : maxD / maxE;
    }
}
