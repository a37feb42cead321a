using System.Text.Json;
using InstructTune.Data.Batching;
using InstructTune.Engine.Autograd;
using InstructTune.Models;
using InstructTune.Training.Continual;
using InstructTune.Training.Losses;

namespace InstructTune.Tests.Training.Continual;

/// <summary>
/// A-GEM and GEM's projections against tools/golden/continual_gem.py (the formula; GEM's QP solved there by projected
/// gradient descent on its dual, an independent method), and on a tiny model: a step along the A-GEM-projected gradient
/// does not increase the memory loss where the plain gradient's step does.
/// </summary>
public class GemTests
{
    private static readonly JsonElement Golden =
        JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("continual", "gem.json"))).RootElement;

    private static float[] Vec(JsonElement e) => e.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();

    [Fact]
    public void ProjectionsMatchTheFormulaAndTheBruteForceQp()
    {
        int cases = 0;
        foreach (var c in Golden.GetProperty("cases").EnumerateArray())
        {
            var g = Vec(c.GetProperty("g"));
            var refs = c.GetProperty("refs").EnumerateArray().Select(Vec).ToList();
            var expected = Vec(c.GetProperty("projected"));
            Assert.All(refs, r => Assert.True(GradientProjection.Dot(g, r) < 0 || refs.Count > 1));
            if (c.GetProperty("kind").GetString() == "agem") Assert.True(GradientProjection.AGem(g, refs[0]));
            else GradientProjection.Gem(g, refs);
            double scale = Math.Sqrt(GradientProjection.Dot(expected, expected));
            for (int i = 0; i < g.Length; i++)
                Assert.True(Math.Abs(g[i] - expected[i]) <= 1e-5 * scale, $"{c.GetProperty("kind")} with {refs.Count} reference(s): [{i}] {g[i]:R} vs {expected[i]:R}");
            foreach (var r in refs) Assert.True(GradientProjection.Dot(g, r) >= -1e-5 * scale, "a constraint is violated after the projection");
            cases++;
        }
        Assert.Equal(4, cases);
    }

    [Fact]
    public void NoConflictLeavesTheGradientAlone()
    {
        float[] g = [1, 2, 3], r = [1, 0, 0];
        Assert.False(GradientProjection.AGem(g, r));
        Assert.Equal([1f, 2, 3], g);
        Assert.All(GradientProjection.Gem(g, [r, [0, 1, 0]]), v => Assert.Equal(0, v));
        Assert.Equal([1f, 2, 3], g);
    }

    [Fact]
    public void TheProjectedStepDoesNotIncreaseTheMemoryLoss()
    {
        // Memory: a prompt answered with token 7; now: the same prompt answered with token 9 — the gradients conflict.
        var model = new LlamaModel(new LlamaConfig { VocabSize = 24, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, NumKeyValueHeads = 2 });
        model.InitializeWeights(5);
        var parameters = model.NamedParameters().Select(p => p.Parameter).ToList();
        Batch Example(int answer)
        {
            int[] ids = [1, 4, 5, 6, answer, 2], labels = [-100, -100, -100, -100, answer, -100];
            return new Batch(1, 6, ids, labels, [0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 0, 0], new byte[6], [0, 0, 0, 0, 0, 0], [], 0);
        }
        var objective = new ObjectiveOptions();
        double Loss(Batch b)
        {
            using var tape = Tape.Record(recordGrad: false);
            return InstructionObjective.Forward(model, b, InstructionObjective.Count([b], objective, 1), objective, true).Loss.Item();
        }
        float[] Gradient(Batch b)
        {
            foreach (var p in parameters) p.ZeroGrad();
            using (var tape = Tape.Record()) tape.Backward(InstructionObjective.Forward(model, b, InstructionObjective.Count([b], objective, 1), objective, true).Loss);
            var flat = parameters.SelectMany(p => p.Grad!.ToArray()).ToArray();
            foreach (var p in parameters) p.ZeroGrad();
            return flat;
        }
        // The first pair of answers (of 8..15) whose gradients conflict at this initialisation.
        var (memory, current) = Enumerable.Range(8, 8).SelectMany(a => Enumerable.Range(8, 8).Where(b => b != a).Select(b => (Example(a), Example(b))))
            .First(pair => GradientProjection.Dot(Gradient(pair.Item2), Gradient(pair.Item1)) < 0);
        var g = Gradient(current); var gRef = Gradient(memory);
        var before = parameters.Select(p => p.ToArray()).ToList();
        double memoryLoss = Loss(memory);
        double Step(float[] direction)
        {
            int offset = 0;
            for (int i = 0; i < parameters.Count; i++)
            {
                var w = before[i].ToArray();
                for (int j = 0; j < w.Length; j++) w[j] -= 0.005f * direction[offset + j];
                parameters[i].Load(w);
                offset += w.Length;
            }
            double loss = Loss(memory);
            for (int i = 0; i < parameters.Count; i++) parameters[i].Load(before[i]);
            return loss;
        }
        double plainRise = Step(g) - memoryLoss;
        Assert.True(plainRise > 0, "the plain step should raise the memory loss (else the case shows nothing)");
        var projected = g.ToArray();
        Assert.True(GradientProjection.AGem(projected, gRef));
        Assert.Equal(0, GradientProjection.Dot(projected, gRef), 5);
        // Orthogonal to the memory gradient: no first-order change; what is left is second order, a sliver of the plain rise.
        double projectedRise = Step(projected) - memoryLoss;
        Assert.True(projectedRise <= 0.02 * plainRise, $"memory loss rose by {projectedRise:R} after the projected step ({plainRise:R} after the plain one)");
        Assert.True(Loss(current) > 0);
    }
}
