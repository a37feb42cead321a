using System.Text.Json;
using InstructTune.Data.Mixing;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Data;

/// <summary>
/// The replay buffer (data.replay_buffer): Algorithm R keeps every example with probability C/N (checked over many seeds
/// against the binomial bound), replayed draws keep their share and come only from the buffer, stratified sampling keeps
/// equal shares per dataset, and a fraction sizes the buffer from the earlier stages' own examples.
/// </summary>
public class ReplayBufferTests
{
    // Stage 1: datasets 0 (600 examples) and 1 (200); stage 2: dataset 2 (400), a third of its draws replayed.
    private static readonly List<PlanSource> Sources =
        [new("a", 1, Enumerable.Repeat(10, 600).ToList()), new("b", 1, Enumerable.Repeat(10, 200).ToList()), new("c", 2, Enumerable.Repeat(10, 400).ToList())];

    // Stage 1 streams every example of a and b once (b every fourth draw); stage 2: c's examples, every third draw a replay.
    private static List<StagePlan> Plan(int seed)
    {
        var stage1 = new List<(int, int)>();
        for (int i = 0, a = 0, b = 0; i < 800; i++) stage1.Add(i % 4 == 3 ? (1, b++) : (0, a++));
        var stage2 = new List<(int, int)>();
        for (int i = 0, c = 0; i < 600; i++) stage2.Add(i % 3 == 2 ? (0, (i * 7 + seed) % 600) : (2, c++ % 400));
        return [new StagePlan(1, stage1, false, 1, [0, 1], [0.75, 0.25]), new StagePlan(2, stage2, false, 1, [2], [1.0])];
    }

    [Fact]
    public void ReservoirKeepsEveryExampleWithProbabilityCOverN()
    {
        const int C = 80, Seeds = 300;
        var hits = new Dictionary<(int, int), int>();
        var plan = Plan(1);
        int n = plan[0].Draws.Count;   // 800 own draws of stage 1
        for (int seed = 0; seed < Seeds; seed++)
        {
            var (_, buffers) = ReplayBuffer.Apply(plan, Sources, new ReplaySettings(C, 0, ReplaySampling.Reservoir, seed));
            Assert.Empty(buffers[0]);
            Assert.Equal(C, buffers[1].Count);
            foreach (var d in buffers[1]) hits[d] = hits.GetValueOrDefault(d) + 1;
        }
        // Each of the n draws is kept Binomial(Seeds, C/n) times: mean 30, sd ≈ 5.2; 5 sd either side.
        double p = (double)C / n, mean = Seeds * p, sd = Math.Sqrt(Seeds * p * (1 - p));
        foreach (var d in plan[0].Draws.Distinct())
            Assert.InRange(hits.GetValueOrDefault(d), mean - 5 * sd, mean + 5 * sd);
        // Dataset b holds a quarter of the stream, so a quarter of the kept items (4 sd of the total over every seed).
        double bShare = hits.Where(h => h.Key.Item1 == 1).Sum(h => h.Value) / (double)(C * Seeds);
        Assert.InRange(bShare, 0.25 - 4 * Math.Sqrt(0.25 * 0.75 / (C * Seeds)), 0.25 + 4 * Math.Sqrt(0.25 * 0.75 / (C * Seeds)));
    }

    [Fact]
    public void ReplayedDrawsKeepTheirShareAndComeFromTheBuffer()
    {
        var plan = Plan(2);
        var (plans, buffers) = ReplayBuffer.Apply(plan, Sources, new ReplaySettings(50, 0, ReplaySampling.Reservoir, 2));
        int Replayed(StagePlan p) => p.Draws.Count(d => Sources[d.Source].Stage != p.Stage);
        Assert.Equal(Replayed(plan[1]), Replayed(plans[1]));
        Assert.True(Replayed(plans[1]) > 0);
        var buffer = buffers[1].ToHashSet();
        Assert.All(plans[1].Draws.Where(d => Sources[d.Source].Stage == 1), d => Assert.Contains(d, buffer));
        Assert.Equal(plan[0].Draws, plans[0].Draws);                                    // stage 1 is untouched
        Assert.Equal(plan[1].Draws.Where(d => d.Source == 2), plans[1].Draws.Where(d => d.Source == 2));   // and stage 2's own draws
    }

    [Fact]
    public void StratifiedKeepsEqualSharesAndAFractionSizesTheBuffer()
    {
        var plan = Plan(3);
        var (_, stratified) = ReplayBuffer.Apply(plan, Sources, new ReplaySettings(60, 0, ReplaySampling.Stratified, 3));
        Assert.Equal(30, stratified[1].Count(d => d.Source == 0));   // 600 vs 200 examples seen, 30 kept of each
        Assert.Equal(30, stratified[1].Count(d => d.Source == 1));
        var (_, fraction) = ReplayBuffer.Apply(plan, Sources, new ReplaySettings(0, 0.1, ReplaySampling.Reservoir, 3));
        Assert.Equal(80, fraction[1].Count);                          // ⌈0.1 × 800⌉
    }

    [Fact]
    public void RecipeKeysWriteTheBufferAndBadValuesAreRefusedNamingTheKey()
    {
        var dir = Directory.CreateTempSubdirectory("replaybuf").FullName;
        string Write(string name, int n)
        {
            var path = Path.Combine(dir, name + ".jsonl");
            File.WriteAllLines(path, Enumerable.Range(0, n).Select(i => JsonSerializer.Serialize(new { instruction = $"{name} task {i}: echo", input = "", output = $"{name} {i}" })));
            return path;
        }
        string a = Write("alpha", 30), b = Write("beta", 90), c = Write("gamma", 60);
        var tokDir = TestPaths.SharedTestData("tokenizers", "llama2");
        var tok = TokenizerLoader.Load(tokDir);
        TrainConfig Config(string buffer, string replay = "0.5") => ConfigLoader.LoadFromString<TrainConfig>($$"""
            model: {tokenizer: {{tokDir}}}
            data:
              validation_fraction: 0
              max_seq_len: 64
              datasets:
                - {path: {{a}}, format: alpaca}
                - {path: {{b}}, format: alpaca}
                - {path: {{c}}, format: alpaca, stage: 2}
              stages: [{epochs: 1}, {epochs: 1, replay: {{replay}}}]
              replay_buffer: {{buffer}}
            """);
        PrepareRecipe.Run(Config("{size: 20, sampling: stratified}"), tok, tokDir, Path.Combine(dir, "out"));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "out", PrepareRecipe.ReplayBufferFile)));
        var stage2 = doc.RootElement[1].GetProperty("examples").EnumerateArray().Select(e => e.GetProperty("dataset").GetString()).ToList();
        Assert.Equal(20, stage2.Count);
        Assert.Equal(10, stage2.Count(n => n == "alpha"));
        Assert.Equal(0, doc.RootElement[0].GetProperty("examples").GetArrayLength());

        foreach (var (buffer, replay, key) in new[]
        {
            ("{size: 20}", "0", "data.replay_buffer"), ("{size: 10, fraction: 0.5}", "0.5", "data.replay_buffer.fraction"),
            ("{fraction: 1.5}", "0.5", "data.replay_buffer.fraction"), ("{size: 10}", "1.2", "data.stages[1].replay"),
            ("{size: 10}", "1", "data.stages[1].replay"), ("{size: 10}", "-0.1", "data.stages[1].replay"),   // [0, 1): 1 and negatives too
        })
        {
            var e = Assert.ThrowsAny<Exception>(() => PrepareRecipe.Run(Config(buffer, replay), tok, tokDir, Path.Combine(dir, "bad")));
            Assert.Contains(key, e.Message);
        }
        // A stage list with a stage that has no data: more data.stages entries than stages, or a gap in the numbering.
        var extra = Config("{size: 10}");
        extra.Data.Stages.Add(new StageEntry { Epochs = 1 });
        Assert.Contains("data.stages", Assert.ThrowsAny<Exception>(() => PrepareRecipe.Run(extra, tok, tokDir, Path.Combine(dir, "bad2"))).Message);
        var gap = Config("{size: 10}");
        gap.Data.Datasets[2].Stage = 3;
        Assert.Contains("data.datasets", Assert.ThrowsAny<Exception>(() => PrepareRecipe.Run(gap, tok, tokDir, Path.Combine(dir, "bad3"))).Message);
    }
}
