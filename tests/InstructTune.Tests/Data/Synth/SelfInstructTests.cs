// Self-Instruct against a scripted OpenAI-compatible server on 127.0.0.1: the kept/rejected instructions and every
// ROUGE-L maximum equal the golden (tools/golden/synth_self_instruct.py: the paper's rules and rouge_score's ROUGE-L
// re-implemented in Python over the released 175 seed tasks); a killed run resumes to the same output with no request
// sent twice; endpoint failures are retried or reported per item; bad seed files name file and line.
using System.Text.Json;
using InstructTune.Common;
using InstructTune.Data.Synth;
using InstructTune.Recipes.Synth;
using InstructTune.Tests.Evaluation;
using InstructTune.Tests.Evaluation.Judge;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Data.Synth;

[Collection("Console")]
public class SelfInstructTests
{
    private static string Seeds => TestPaths.SharedTestData("datasets", "self-instruct", "seed_tasks.jsonl");

    private static SynthSection Config(FakeOpenAiServer server, int concurrency = 1) => new()
    {
        Endpoint = server.BaseUrl, Model = "synth-test", ApiKeyEnv = "", Concurrency = concurrency, MaxRounds = 4,
        Target = 100, MaxAttempts = 3, BaseDelayS = 0.01, AttemptTimeoutS = 5, Seed = 7, Refine = false,
    };

    private static (SelfInstructResult Result, string Dir) RunOnce(FakeOpenAiServer server, SynthSection cfg, string? dir = null,
        Action<SynthRun>? setup = null)
    {
        dir ??= Directory.CreateTempSubdirectory("itune-synth-").FullName;
        using var run = new SynthRun(cfg, dir);
        setup?.Invoke(run);
        var result = SelfInstructRecipe.Run(run, SeedTasks.Read(Seeds));
        SynthPipeline.Finish(run, SelfInstructRecipe.Method, result.Records, result.Rejected, default);
        return (result, dir);
    }

    [Fact]
    public void Kept_and_rejected_instructions_equal_the_golden()
    {
        using var server = new FakeOpenAiServer();
        var script = new SynthScript(TestPaths.Fixtures("synth", "self_instruct_answers.json"));
        server.Script = script.Answer;
        var (result, dir) = RunOnce(server, Config(server));
        try
        {
            var golden = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("synth", "self_instruct_expected.json"))).RootElement
                .EnumerateArray().ToList();
            // Every candidate, in processing order: kept ones become tasks (the poem gets no valid instance), the rest
            // are rejected with the golden's reason; ROUGE-L maxima equal to 1e-12.
            var decided = result.Rejected.Concat(result.Records.DistinctBy(r => r.Instruction))
                .ToDictionary(r => r.Instruction.ToLowerInvariant());
            Assert.Equal(golden.Count, decided.Count);
            foreach (var g in golden)
            {
                var text = g.GetProperty("instruction").GetString()!.ToLowerInvariant();
                Assert.True(decided.TryGetValue(text, out var rec), $"candidate missing: {text}");
                var decision = g.GetProperty("decision").GetString();
                var reason = rec!.Reasons.FirstOrDefault();
                if (decision == "keep") Assert.True(reason is null or "no_valid_instances", $"{text}: {reason}");
                else Assert.Equal(decision, reason);
                if (g.TryGetProperty("rouge_l_max", out var m))
                    Assert.Equal(m.GetDouble(), rec.Scores["rouge_l_max"], 12);
            }
            // The exact-0.7 candidate is rejected ("less than 0.7" keeps), its 12-word variant kept.
            Assert.Equal("rouge_l", decided["give me a simple recipe for the following breakfast dish today."].Reasons[0]);
            Assert.Equal(0.7, decided["give me a simple recipe for the following breakfast dish today."].Scores["rouge_l_max"], 12);

            // Instances: classification tasks output-first (the label is the output), others input-first.
            Assert.Equal(8, result.Tasks);
            Assert.Equal(16, result.Records.Count);
            var spam = result.Records.Where(r => r.Instruction.StartsWith("Classify whether the given email", StringComparison.Ordinal)).ToList();
            Assert.Equal(["Positive", "Negative"], spam.Select(r => r.Output).Order().Reverse());
            Assert.All(spam, r => Assert.True(r.IsClassification));
            Assert.Equal("no_valid_instances", result.Rejected.Single(r => r.Instruction.Contains("short poem")).Reasons[0]);

            // Output files: data.jsonl (alpaca fields + provenance), rejected.jsonl, report.json funnel, report.html.
            var lines = File.ReadAllLines(Path.Combine(dir, "data.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(16, lines.Count);
            Assert.All(lines, l => Assert.Equal("self-instruct", l.GetProperty("method").GetString()));
            var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json"))).RootElement;
            var funnel = report.GetProperty("funnel");
            Assert.Equal(4, funnel.GetProperty("requests").GetInt32());
            Assert.Equal(1, funnel.GetProperty("truncated_answer").GetInt32());
            Assert.Equal(golden.Count, funnel.GetProperty("candidates").GetInt32());
            Assert.Equal(golden.Count(g => g.GetProperty("decision").GetString() == "keep"), funnel.GetProperty("instructions_kept").GetInt32());
            Assert.Equal(golden.Count(g => g.GetProperty("decision").GetString() == "rouge_l"), funnel.GetProperty("rejected_rouge_l").GetInt32());
            Assert.Contains("Filter funnel", File.ReadAllText(Path.Combine(dir, "report.html")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_killed_run_resumes_to_the_same_output_without_repeating_a_request()
    {
        using var full = new FakeOpenAiServer();
        full.Script = new SynthScript(TestPaths.Fixtures("synth", "self_instruct_answers.json")).Answer;
        var (_, fullDir) = RunOnce(full, Config(full));

        using var server = new FakeOpenAiServer();
        server.Script = new SynthScript(TestPaths.Fixtures("synth", "self_instruct_answers.json")).Answer;
        var dir = Directory.CreateTempSubdirectory("itune-synth-resume-").FullName;
        try
        {
            using var cts = new CancellationTokenSource();
            int seen = 0;
            using (var run = new SynthRun(Config(server), dir))
            {
                run.Journal.Appended = _ => { if (Interlocked.Increment(ref seen) == 7) cts.Cancel(); };
                Assert.ThrowsAny<OperationCanceledException>(() => SelfInstructRecipe.Run(run, SeedTasks.Read(Seeds), cts.Token));
            }
            Assert.Equal(7, server.Total);
            var (_, _) = RunOnce(server, Config(server), dir);
            Assert.Equal(File.ReadAllText(Path.Combine(fullDir, "data.jsonl")), File.ReadAllText(Path.Combine(dir, "data.jsonl")));
            Assert.Equal(File.ReadAllText(Path.Combine(fullDir, "rejected.jsonl")), File.ReadAllText(Path.Combine(dir, "rejected.jsonl")));
            Assert.Equal(full.Total, server.Total);
            Assert.All(server.Prompts, p => Assert.Equal(1, p.Value));
            var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json"))).RootElement;
            Assert.Equal(7, report.GetProperty("requests").GetProperty("from_journal").GetInt32());
        }
        finally { Directory.Delete(dir, true); Directory.Delete(fullDir, true); }
    }

    [Fact]
    public void Endpoint_errors_are_retried_or_reported_per_item()
    {
        using var server = new FakeOpenAiServer();
        var script = new SynthScript(TestPaths.Fixtures("synth", "self_instruct_answers.json"));
        script.FailClassify.Add("Translate the given English sentence into French and explain any idioms.");
        int calls = 0;
        // The first request gets a 429 with Retry-After, the second a body that is not JSON, the third a 500, the fourth
        // hangs past the attempt timeout: all retried.
        server.Script = prompt => Interlocked.Increment(ref calls) switch
        {
            1 => new ScriptedReply(null, Status: 429, RetryAfter: "0"),
            2 => new ScriptedReply(null, RawBody: "<<<not json>>>"),
            3 => new ScriptedReply(null, Status: 500),
            4 => new ScriptedReply(null, Hang: true),
            _ => script.Answer(prompt),
        };
        var cfg = Config(server);
        cfg.MaxAttempts = 5;
        cfg.AttemptTimeoutS = 1;
        cfg.PromptPricePerMtok = 2; cfg.CompletionPricePerMtok = 8;
        var (result, dir) = RunOnce(server, cfg);
        try
        {
            Assert.Equal(7, result.Tasks);   // the translation task lost to its failing classification request, the rest kept
            var failed = result.Rejected.Single(r => r.Reasons[0] == "endpoint_error");
            Assert.StartsWith("Translate", failed.Instruction);
            var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json"))).RootElement;
            Assert.Equal(1, report.GetProperty("usage_by_stage").GetProperty("classify").GetProperty("failed").GetInt32());
            Assert.Equal(5, JsonDocument.Parse(File.ReadAllLines(Path.Combine(dir, "journal.jsonl"))[0]).RootElement.GetProperty("attempts").GetInt32());
            // Token accounting: the fake server reports 10 prompt and 5 completion tokens per answer.
            var requests = report.GetProperty("requests");
            long sent = requests.GetProperty("sent").GetInt64();
            Assert.Equal(10 * sent, requests.GetProperty("prompt_tokens").GetInt64());
            Assert.Equal(5 * sent, requests.GetProperty("completion_tokens").GetInt64());
            Assert.Equal((10 * sent * 2 + 5 * sent * 8) / 1e6, requests.GetProperty("cost").GetDouble(), 9);
            var journal = File.ReadAllLines(Path.Combine(dir, "journal.jsonl"));
            Assert.Contains(journal, l => l.Contains("HTTP 500"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Refused_endpoint_stops_with_a_clear_error_and_the_cli_exits_2()
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var dir = Directory.CreateTempSubdirectory("itune-synth-refused-").FullName;
        try
        {
            var (rc, _, stderr) = CliCapture.Run("synth", "self-instruct", "--seeds", Seeds, "--out", dir,
                "--endpoint", $"http://127.0.0.1:{port}/v1", "--model", "m", "synth.max_attempts=2", "synth.base_delay_s=0.01",
                "synth.max_failed_rounds=2", "synth.api_key_env=", "synth.refine=false");
            Assert.Equal(2, rc);
            Assert.Contains("connection refused", stderr);
            Assert.Contains("rerun to resume", stderr);
            Assert.DoesNotContain("   at ", stderr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Bad_seed_files_name_file_and_line()
    {
        var dir = Directory.CreateTempSubdirectory("itune-synth-seeds-").FullName;
        try
        {
            var path = Path.Combine(dir, "seeds.jsonl");
            File.WriteAllText(path, "{\"instruction\": \"Say hi.\", \"instances\": [{\"input\": \"\", \"output\": \"hi\"}]}\n{\"instruction\": 3}\n");
            var ex = Assert.Throws<InputException>(() => SeedTasks.Read(path));
            Assert.Contains("seeds.jsonl:2", ex.Message);
            File.WriteAllText(path, "{\"instruction\": \"Say hi.\"}\n{not json\n");
            Assert.Contains("seeds.jsonl:2: not valid JSON", Assert.Throws<InputException>(() => SeedTasks.Read(path)).Message);
            File.WriteAllText(path, "\n\n");
            Assert.Contains("no seed tasks", Assert.Throws<InputException>(() => SeedTasks.Read(path)).Message);
            var (rc, _, stderr) = CliCapture.Run("synth", "self-instruct", "--seeds", path, "--out", Path.Combine(dir, "out"), "--endpoint", "http://127.0.0.1:9/v1");
            Assert.Equal(2, rc);
            Assert.Contains("no seed tasks", stderr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Splitting_and_instance_parsing_follow_the_released_rules()
    {
        Assert.Equal(["Write a haiku about rain.", "List three colours."],
            SelfInstructRules.SplitInstructions("write a haiku   about rain.\n10. List three colours.", false));
        Assert.Empty(SelfInstructRules.SplitInstructions("A task.\n10. Another", truncated: true));
        Assert.Equal(["A whole task here.", "Unfinis"], SelfInstructRules.SplitInstructions("A whole task here.\n10. Unfinis", true, dropAllWhenTruncated: false));
        // Same input with two different outputs: the task is ambiguous, nothing is kept; identical pairs collapse.
        Assert.Empty(SelfInstructRules.ParseInputFirst("Example 1\nInput: x\nOutput: a\nExample 2\nInput: x\nOutput: b", false));
        Assert.Single(SelfInstructRules.ParseInputFirst("Example 1\nInput: x\nOutput: a\nExample 2\nInput: x\nOutput: a", false));
        // Output equal to input, an empty output, a trailing colon: invalid.
        Assert.Empty(SelfInstructRules.ParseInputFirst("Input: same\nOutput: same", false));
        Assert.Empty(SelfInstructRules.ParseInputFirst("Input: question:\nOutput: answer", false));
        Assert.Empty(SelfInstructRules.ParseInputFirst("just an answer", false));
        Assert.Equal([new SynthInstance("", "just an answer")], SelfInstructRules.ParseInputFirst("just an answer", false, lenient: true));
        Assert.Equal([new SynthInstance("Great film.", "Positive")], SelfInstructRules.ParseOutputFirst("Class label: Positive\nInput: Great film.", false));
        Assert.True(SelfInstructRules.IsYes(" Yes."));
        Assert.False(SelfInstructRules.IsYes("No, it is not"));
    }
}

/// <summary>A real kill: `itune synth self-instruct` in a child process, SIGKILLed once 7 answers are journaled, then
/// rerun in the same folder.</summary>
[Collection("Console")]
public class SelfInstructProcessKillTests
{
    [Fact]
    public void A_process_killed_mid_run_resumes_to_the_same_output()
    {
        var seeds = TestPaths.SharedTestData("datasets", "self-instruct", "seed_tasks.jsonl");
        string[] Args(FakeOpenAiServer s, string dir) =>
            ["synth", "self-instruct", "--seeds", seeds, "--out", dir, "--endpoint", s.BaseUrl, "--model", "m", "--concurrency", "1", "--seed", "7",
             "synth.api_key_env=", "synth.max_rounds=4", "synth.refine=false", "synth.base_delay_s=0.01"];
        using var full = new FakeOpenAiServer();
        full.Script = new SynthScript(TestPaths.Fixtures("synth", "self_instruct_answers.json")).Answer;
        var fullDir = Directory.CreateTempSubdirectory("itune-synth-full-").FullName;
        using var server = new FakeOpenAiServer();
        var script = new SynthScript(TestPaths.Fixtures("synth", "self_instruct_answers.json"));
        int served = 0;
        bool slow = true;
        // From the 7th request on, each answer takes 300 ms while the child runs, so the kill lands mid-run on a loaded machine.
        server.Script = prompt => { if (Interlocked.Increment(ref served) >= 7 && Volatile.Read(ref slow)) Thread.Sleep(300); return script.Answer(prompt); };
        var dir = Directory.CreateTempSubdirectory("itune-synth-kill-").FullName;
        try
        {
            Assert.Equal(0, CliCapture.Run(Args(full, fullDir)).Rc);
            var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "itune.dll") }.Concat(Args(server, dir))) psi.ArgumentList.Add(a);
            using (var p = System.Diagnostics.Process.Start(psi)!)
            {
                p.OutputDataReceived += (_, _) => { };
                p.ErrorDataReceived += (_, _) => { };
                p.BeginOutputReadLine();
                p.BeginErrorReadLine();
                var journal = Path.Combine(dir, "journal.jsonl");
                var until = DateTime.UtcNow.AddMinutes(2);
                while (!p.HasExited && DateTime.UtcNow < until && (!File.Exists(journal) || File.ReadAllLines(journal).Length < 7)) Thread.Sleep(5);
                Assert.False(p.HasExited, "the run finished before it could be killed");
                p.Kill();
                p.WaitForExit();
            }
            Volatile.Write(ref slow, false);
            int before = server.Total;
            Assert.True(before < full.Total);
            var (rc, _, stderr) = CliCapture.Run(Args(server, dir));
            Assert.True(rc == 0, stderr);
            Assert.Contains("resuming", stderr);
            Assert.Equal(File.ReadAllText(Path.Combine(fullDir, "data.jsonl")), File.ReadAllText(Path.Combine(dir, "data.jsonl")));
            Assert.Equal(File.ReadAllText(Path.Combine(fullDir, "rejected.jsonl")), File.ReadAllText(Path.Combine(dir, "rejected.jsonl")));
            // At most the one request in flight at the kill (answered but not yet journaled) is sent again.
            Assert.InRange(server.Total - full.Total, 0, 1);
            Assert.True(server.Prompts.Count(x => x.Value > 1) <= 1);
        }
        finally { Directory.Delete(dir, true); Directory.Delete(fullDir, true); }
    }
}
