// Evol-Instruct and quality control against the scripted server: one operation per pool entry per round, lineage
// recorded, each elimination rule of WizardLM §3.3 fires on the case it names and the parent goes back to the pool;
// in-breadth draws from the sparsest topic cluster; refine accepts / flags / rejects by its thresholds; review
// decisions move items and survive a rerun.
using System.Text.Json;
using InstructTune.Common;
using InstructTune.Data.Synth;
using InstructTune.Tests.Evaluation.Judge;
using InstructTune.Recipes.Synth;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Data.Synth;

public class EvolRefineTests
{
    private static SynthSection Config(FakeOpenAiServer server) => new()
    {
        Endpoint = server.BaseUrl, Model = "synth-test", ApiKeyEnv = "", Concurrency = 3, MaxAttempts = 2, BaseDelayS = 0.01,
        AttemptTimeoutS = 5, Seed = 11, Refine = false,
    };

    private static string After(string prompt, string marker) =>
        prompt[(prompt.LastIndexOf(marker, StringComparison.Ordinal) + marker.Length)..].Trim();

    // Evolution: the parent's marker decides what goes wrong. Equality: equal when both texts are the same.
    private static ScriptedReply? EvolScript(string prompt)
    {
        if (prompt.StartsWith("You rewrite instructions", StringComparison.Ordinal))
        {
            var parent = After(prompt, "Instruction:\n");
            if (parent.Contains("[copy]")) return new ScriptedReply("Rewritten prompt: " + parent + " in more depth");
            if (parent.Contains("[same]")) return new ScriptedReply(parent);
            return new ScriptedReply(parent + " Also justify each step.");
        }
        if (prompt.StartsWith("You invent new instructions", StringComparison.Ordinal))
            return new ScriptedReply("Explain a rare idea related to: " + After(prompt, "Instruction:\n"));
        if (prompt.StartsWith("Compare the two instructions", StringComparison.Ordinal))
        {
            var first = prompt.Split("First instruction:\n")[1].Split("\n\nSecond instruction:")[0].Trim();
            var second = prompt.Split("Second instruction:\n")[1].Split("\n\nAnswer with")[0].Trim();
            return new ScriptedReply(first == second ? "Equal" : "Different");
        }
        // The response stage: the evolved instruction itself is the prompt.
        if (prompt.Contains("[sorry]")) return new ScriptedReply("Sorry, I cannot help with that request.");
        if (prompt.Contains("[empty]")) return new ScriptedReply("Yes, it is.");
        return new ScriptedReply("Here is a thorough answer that addresses every part of the request in order.");
    }

    private static List<SynthRecord> Inputs(params string[] instructions) =>
        instructions.Select((s, i) => new SynthRecord { Id = $"in-{i}", Instruction = s }).ToList();

    [Fact]
    public void Depth_evolution_applies_one_operation_per_step_records_lineage_and_eliminates_the_named_cases()
    {
        using var server = new FakeOpenAiServer { Script = EvolScript };
        var cfg = Config(server);
        cfg.EvolRounds = 2;
        cfg.EvolOperations = ["add_constraints", "deepening", "concretizing", "increase_reasoning", "complicate_input"];
        var dir = Directory.CreateTempSubdirectory("itune-evol-").FullName;
        try
        {
            using var run = new SynthRun(cfg, dir);
            var inputs = Inputs("Explain how rainbows form.", "Describe a good breakfast [copy].", "Summarise the water cycle [same].",
                "Plan a birthday party [sorry].", "Is the sky blue [empty]?");
            var result = EvolInstructRecipe.Run(run, inputs, new LexicalEmbedder());

            // One evolution request per pool entry per round (5 entries, 2 rounds), each naming the method of its operation.
            var evolvePrompts = server.Prompts.Keys.Where(p => p.StartsWith("You rewrite instructions", StringComparison.Ordinal)).ToList();
            Assert.Equal(10, evolvePrompts.Sum(p => server.Prompts[p]));   // a failed parent drawing the same operation again repeats its prompt
            Assert.Equal(10, run.Funnel["evolutions"]);
            var methods = run.Prompts.Entries("evol_methods");
            foreach (var rec in result.Evolved.Concat(result.Eliminated))
            {
                Assert.Contains(rec.Operation, cfg.EvolOperations);
                var parentText = rec.ParentId!.StartsWith("in-") ? inputs.Single(i => i.Id == rec.ParentId).Instruction
                    : result.Evolved.Single(e => e.Id == rec.ParentId).Instruction;
                Assert.Contains(evolvePrompts, p => p.Contains(methods[rec.Operation!]) && p.EndsWith(parentText));
            }

            // The good lineage: round 1 evolves the input, round 2 evolves the round-1 version; root stays the input.
            var good = result.Evolved.Where(e => e.RootId == "in-0").OrderBy(e => e.Round).ToList();
            Assert.Equal(2, good.Count);
            Assert.Equal("in-0", good[0].ParentId);
            Assert.Equal(good[0].Id, good[1].ParentId);
            Assert.Equal("Explain how rainbows form. Also justify each step. Also justify each step.", good[1].Instruction);
            Assert.All(good, g => Assert.False(string.IsNullOrEmpty(g.Output)));

            // Each failure case, in both rounds, with the input as parent both times: failed evolutions return to the pool.
            foreach (var (id, reason) in new[] { ("in-1", "copied_prompt_words"), ("in-2", "no_information_gain"), ("in-3", "response_sorry"), ("in-4", "response_empty") })
            {
                var failed = result.Eliminated.Where(e => e.ParentId == id).OrderBy(e => e.Round).ToList();
                Assert.Equal([1, 2], failed.Select(e => e.Round));
                Assert.All(failed, e => Assert.Equal(reason, e.Reasons[0]));
            }
            Assert.Equal(2, result.Evolved.Count);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Breadth_evolution_draws_parents_from_the_sparsest_topic_cluster()
    {
        using var server = new FakeOpenAiServer { Script = EvolScript };
        var cfg = Config(server);
        cfg.EvolRounds = 1;
        cfg.EvolOperations = ["breadth"];
        cfg.EvolClusters = 2;
        var dir = Directory.CreateTempSubdirectory("itune-evol-breadth-").FullName;
        try
        {
            using var run = new SynthRun(cfg, dir);
            var inputs = Inputs("Give a recipe for tomato pasta sauce.", "Give a recipe for tomato soup.", "Give a recipe for pasta with tomato.",
                "Give a recipe for a tomato pasta salad.", "Why do distant galaxies appear red to astronomers?");
            var result = EvolInstructRecipe.Run(run, inputs, new LexicalEmbedder());
            Assert.Equal(5, result.Evolved.Count);
            Assert.All(result.Evolved, e =>
            {
                Assert.Equal("in-4", e.ParentId);       // the galaxy question is alone in its cluster
                Assert.Equal(e.Id, e.RootId);           // in-breadth starts a new lineage
                Assert.Equal("breadth", e.Operation);
            });
            var sizes = result.Coverage[0]!["cluster_sizes"]!.AsArray().Select(x => (int)x!).Order().ToList();
            Assert.Equal([1, 4], sizes);
        }
        finally { Directory.Delete(dir, true); }
    }

    // Judge answers chosen by markers in the response: [irs:N] gives score N, [contra] says the response contradicts.
    private static ScriptedReply? RefineScript(string prompt)
    {
        if (prompt.Contains("Score the response from 1 to 10"))
        {
            var m = System.Text.RegularExpressions.Regex.Match(prompt, @"\[irs:(\d+)\]");
            return new ScriptedReply(m.Success ? $"{{\"score\": {m.Groups[1].Value}, \"reason\": \"scripted\"}}" : "no idea");
        }
        if (prompt.StartsWith("Read the instruction and the response below"))
            return new ScriptedReply(After(prompt, "Response:\n").Contains("[contra]") ? "Yes" : "No");
        return null;
    }

    [Fact]
    public void Refine_accepts_flags_and_rejects_by_threshold_and_review_decisions_move_items()
    {
        using var server = new FakeOpenAiServer { Script = RefineScript };
        var cfg = Config(server);
        cfg.RejectCoherence = 0.01; cfg.FlagCoherence = 0.02;
        cfg.RejectAlignment = 3; cfg.FlagAlignment = 6;
        cfg.FormatPatterns = ["^[A-Z]"];
        var dir = Directory.CreateTempSubdirectory("itune-refine-").FullName;
        try
        {
            var records = new List<SynthRecord>
            {
                new() { Id = "good", Instruction = "Name the primary colours.", Output = "The primary colours are red, blue and yellow. [irs:9]" },
                new() { Id = "off-topic", Instruction = "Name the primary colours.", Output = "Bananas grow on trees. [irs:9]" },
                new() { Id = "misaligned", Instruction = "Name the primary colours.", Output = "Colours are nice; primary school is fun. [irs:2]" },
                new() { Id = "partial", Instruction = "Name the primary colours.", Output = "Red is one of the primary colours. [irs:5]" },
                new() { Id = "contradicts", Instruction = "Name the primary colours.", Output = "The primary colours are red and blue, and there are no primary colours. [irs:8] [contra]" },
                new() { Id = "format", Instruction = "Name the primary colours.", Output = "the primary colours are red, blue and yellow. [irs:9]" },
                new() { Id = "unparsed", Instruction = "Name the primary colours.", Output = "The primary colours are red, blue, yellow." },
            };
            using var run = new SynthRun(cfg, dir);
            var r = RefineRecipe.Run(run, records);
            Assert.Equal(["good"], r.Accepted.Select(x => x.Id));
            Assert.Equal(new Dictionary<string, string> { ["off-topic"] = "coherence", ["misaligned"] = "alignment" },
                r.Rejected.ToDictionary(x => x.Id, x => x.Reasons[0]));
            Assert.Equal(new Dictionary<string, string> { ["partial"] = "alignment", ["contradicts"] = "contradiction", ["format"] = "format", ["unparsed"] = "alignment_unparsed" },
                r.Flagged.ToDictionary(x => x.Id, x => x.Reasons[0]));
            Assert.Equal(9, r.Accepted[0].Scores["alignment"]);
            SynthPipeline.Write(run, "refine", r.Accepted, r.Flagged, r.Rejected);

            // A person accepts the first flagged item and rejects the second; the other two stay in the queue.
            var summary = SynthReview.Run(dir, new StringReader("a\nr\ns\nq\n"), Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings { Out = new Spectre.Console.AnsiConsoleOutput(TextWriter.Null) }));
            Assert.Contains("1 accepted, 1 rejected, 1 skipped", summary);
            string[] Ids(string file) => File.ReadAllLines(Path.Combine(dir, file)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()!).ToArray();
            Assert.Equal(["good", "partial"], Ids("data.jsonl"));
            Assert.Contains("contradicts", Ids("rejected.jsonl"));
            Assert.Equal(["format", "unparsed"], Ids("review.jsonl"));
            // The pipeline writing again (a resumed run) applies the same decisions.
            SynthPipeline.Write(run, "refine", r.Accepted, r.Flagged, r.Rejected);
            Assert.Equal(["good", "partial"], Ids("data.jsonl"));
            Assert.Equal(["format", "unparsed"], Ids("review.jsonl"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Complexity_balance_caps_each_level_at_ratio_times_the_rarest()
    {
        using var server = new FakeOpenAiServer { Script = RefineScript };
        var cfg = Config(server);
        cfg.RejectAlignment = 0; cfg.FlagAlignment = 0; cfg.CheckContradiction = false; cfg.BalanceRatio = 1;
        var dir = Directory.CreateTempSubdirectory("itune-refine-balance-").FullName;
        try
        {
            using var run = new SynthRun(cfg, dir);
            var records = new List<SynthRecord>
            {
                new() { Id = "s1", Instruction = "Name a fruit.", Output = "Apple is a fruit." },
                new() { Id = "s2", Instruction = "Name a colour.", Output = "Red is a colour." },
                new() { Id = "s3", Instruction = "Name a planet.", Output = "Mars is a planet." },
                new() { Id = "m1", Instruction = "First boil water, then add pasta, finally drain it.", Output = "Boil water, add pasta, then drain it." },
            };
            var r = RefineRecipe.Run(run, records);
            Assert.Equal(["s1", "m1"], r.Accepted.Select(x => x.Id));
            Assert.Equal(["s2", "s3"], r.Flagged.Select(x => x.Id));
            Assert.All(r.Flagged, x => Assert.Equal("complexity_balance", x.Reasons[0]));
            Assert.Equal(0, server.Total);   // nothing judged through the endpoint when alignment and contradiction are off
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Bad_evolution_input_and_config_name_the_problem()
    {
        var dir = Directory.CreateTempSubdirectory("itune-evol-bad-").FullName;
        try
        {
            var path = Path.Combine(dir, "in.jsonl");
            File.WriteAllText(path, "{\"instruction\": \"ok\"}\n{\"input\": \"no instruction\"}\n");
            Assert.Contains("in.jsonl:2", Assert.Throws<InputException>(() => SynthData.Read(path, requireOutput: false)).Message);
            File.WriteAllText(path, "{\"instruction\": \"ok\"}\n");
            Assert.Contains("\"output\"", Assert.Throws<InputException>(() => SynthData.Read(path, requireOutput: true)).Message);
            using var server = new FakeOpenAiServer();
            var cfg = Config(server);
            cfg.EvolOperations = ["deepening", "widening"];
            using var run = new SynthRun(cfg, Path.Combine(dir, "out"));
            var ex = Assert.Throws<InputException>(() => EvolInstructRecipe.Run(run, Inputs("Say hi."), new LexicalEmbedder()));
            Assert.Contains("synth.evol_operations: unknown operation \"widening\"", ex.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
