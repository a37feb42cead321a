using System.Text.Json;
using InstructTune.Cli;
using InstructTune.Data.Loading;
using InstructTune.Data.Pipeline;
using InstructTune.Data.Templating;

namespace InstructTune.Tests.Data;

public class PreparePipelineTests
{
    private static string Shared(params string[] p) => TestPaths.SharedTestData(["datasets", .. p]);

    [Fact]
    public void PrepareCountsCachesAndReusesShards()
    {
        var outDir = Directory.CreateTempSubdirectory("itune-prep").FullName;
        var tok = new WordTokenizer();
        var options = new PrepareOptions([new DataSource(Shared("alpaca", "alpaca_5000.json"), DataFormat.Alpaca)], null, "alpaca", outDir,
            MaxSeqLen: 128, SkipInvalid: true);
        var first = PreparePipeline.Run(options, tok);
        Assert.False(first.Stats.CacheReused);
        Assert.Equal((5000, 4998, 2), (first.Stats.RecordsRead, first.Stats.RecordsKept + first.Stats.DuplicatesRemoved, first.Stats.RecordsRejected));
        Assert.Equal(2, first.Stats.RejectedByReason["empty_output"]);
        // Independently: python3 -c "import json,re;a=json.load(open(P));k=[r for r in a if r['output'].strip()];
        //   n=lambda s:' '.join(re.findall(r'\w+',s.lower()));print(len(k)-len({n(r['instruction']+'\n'+r['input']) for r in k}))"
        Assert.Equal(ExactDuplicatesByPython(), first.Stats.DuplicatesRemoved);
        var rejected = File.ReadAllLines(Path.Combine(outDir, "rejected.jsonl"));
        Assert.Equal(2, rejected.Length);
        Assert.All(rejected, l => { using var d = JsonDocument.Parse(l); Assert.Equal("empty_output", d.RootElement.GetProperty("reason").GetString()); Assert.Equal(1, d.RootElement.GetProperty("line").GetInt32()); });
        Assert.Empty(Directory.EnumerateFiles(outDir, "*.tmp"));

        using (var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json"))))
        {
            foreach (var key in new[] { "records_read", "records_kept", "records_rejected", "rejected_by_reason", "duplicates_removed", "tokens", "truncated", "padding_share" })
                Assert.True(stats.RootElement.TryGetProperty(key, out _), key);
            foreach (var key in new[] { "plain", "bucketed", "packed" })
                Assert.True(stats.RootElement.GetProperty("padding_share").TryGetProperty(key, out _), key);
            Assert.True(stats.RootElement.GetProperty("truncated").GetInt32() > 0);
            Assert.Equal(128, stats.RootElement.GetProperty("tokens").GetProperty("max").GetInt32());
        }

        // Shards read back equal a direct tokenization of the same records.
        using (var cached = first.Open())
        {
            Assert.Equal(first.Stats.RecordsKept, cached.Count);
            var records = DatasetLoader.Read(Shared("alpaca", "alpaca_5000.json"), new LoadOptions(DataFormat.Alpaca)).Where(i => i.Record != null).Select(i => i.Record!).Take(50).ToList();
            var direct = new ExampleTokenizer(tok, new AlpacaTemplate(), new MaskOptions(128));
            for (int i = 0; i < 50; i++)
            {
                var e = direct.Tokenize(records[i], 0);
                Assert.Equal(e.Ids, cached[i].Ids);
                Assert.Equal(e.Labels, cached[i].Labels);
                Assert.Equal(e.Segments, cached[i].Segments);
                Assert.Equal(e.TruncatedTokens, cached[i].TruncatedTokens);
            }
        }

        var shardTime = File.GetLastWriteTimeUtc(Path.Combine(outDir, "shard-00000.bin"));
        var second = PreparePipeline.Run(options, tok);
        Assert.True(second.Stats.CacheReused);
        Assert.Equal(first.Stats.RecordsKept, second.Stats.RecordsKept);
        Assert.Equal(shardTime, File.GetLastWriteTimeUtc(Path.Combine(outDir, "shard-00000.bin")));
        var third = PreparePipeline.Run(options with { MaxSeqLen = 256 }, tok);
        Assert.False(third.Stats.CacheReused);
        Assert.NotEqual(first.Manifest.Key, third.Manifest.Key);
    }

    private static int ExactDuplicatesByPython()
    {
        // Same normalisation as the Python one-liner above (lowercase word characters joined by one space).
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Shared("alpaca", "alpaca_5000.json")));
        var kept = doc.RootElement.EnumerateArray().Where(r => r.GetProperty("output").GetString()!.Trim().Length > 0).ToList();
        string N(string s) => string.Join(' ', System.Text.RegularExpressions.Regex.Matches(s.ToLowerInvariant(), @"[\p{L}\p{N}]+").Select(m => m.Value));
        return kept.Count - kept.Select(r => N(r.GetProperty("instruction").GetString()! + "\n" + r.GetProperty("input").GetString()!)).Distinct().Count();
    }

    [Fact]
    public void FailPolicyStopsAtTheFirstBadRecordWithItsLocation()
    {
        var outDir = Directory.CreateTempSubdirectory("itune-prep").FullName;
        var options = new PrepareOptions([new DataSource(Shared("alpaca", "alpaca_5000.json"), DataFormat.Alpaca)], null, "alpaca", outDir);
        var ex = Assert.Throws<InstructTune.Data.Records.DataFormatException>(() => PreparePipeline.Run(options, new WordTokenizer()));
        Assert.Contains("alpaca_5000.json:1 (record 2335)", ex.Message);
        Assert.Contains("field 'output'", ex.Message);
        Assert.False(File.Exists(Path.Combine(outDir, "manifest.json")));
    }
}

/// <summary><c>itune prepare</c> and <c>itune tasks</c> in-process, with the real llama2 tokenizer.</summary>
[Collection("Console")]
public class DataCliTests
{
    private static (int Rc, string Out, string Err) Cli(params string[] args)
        => TestConsole.Run(args);

    public static TheoryData<string, string> SmallDatasets() => new()
    {
        { "dolly-15k/databricks-dolly-15k.head70.jsonl", "dolly" },
        { "openai-messages/toy_chat_fine_tuning.jsonl", "messages" },
        { "sharegpt-fastchat/dummy_conversation.json", "sharegpt" },
        { "llamafactory-demo/identity.json", "alpaca" },
        { "self-instruct/seed_tasks.jsonl", "self-instruct" },
        { "super-natural-instructions/tasks_legacy_2021/task321_stereoset_classification_religion.json", "sni" },
    };

    public static TheoryData<string, string> AllDatasets()
    {
        var d = new TheoryData<string, string>();
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("data", "dataset_counts.json")));
        foreach (var p in doc.RootElement.EnumerateObject()) d.Add(p.Name, p.Value.GetProperty("format").GetString()!);
        return d;
    }

    private static void PrepareAndCheck(string relative, string format)
    {
        using var counts = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("data", "dataset_counts.json")));
        var expected = counts.RootElement.GetProperty(relative);
        var outDir = Directory.CreateTempSubdirectory("itune-cli").FullName;
        var (rc, output, err) = Cli("prepare", "--data", TestPaths.SharedTestData("datasets", relative), "--format", format,
            "--tokenizer", TestPaths.SharedTestData("tokenizers", "llama2"), "--template", "llama2", "--out", outDir, "--skip-invalid", "--max-seq-len", "4096");
        Assert.True(rc == 0, err);
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var s = stats.RootElement;
        Assert.Equal(expected.GetProperty("read").GetInt32(), s.GetProperty("records_read").GetInt32());
        Assert.Equal(expected.GetProperty("kept").GetInt32(), s.GetProperty("records_kept").GetInt32() + s.GetProperty("duplicates_removed").GetInt32());
        Assert.Matches($@"records read\s*│\s*{expected.GetProperty("read").GetInt32()}\s", output);
        Assert.Matches($@"records kept\s*│\s*{s.GetProperty("records_kept").GetInt32()}\s", output);
        int rejected = expected.GetProperty("rejected_by_reason").EnumerateObject().Sum(p => p.Value.GetInt32());
        Assert.Equal(rejected, s.GetProperty("records_rejected").GetInt32());
        if (rejected > 0) Assert.Equal(rejected, File.ReadAllLines(Path.Combine(outDir, "rejected.jsonl")).Length);
    }

    [Theory]
    [MemberData(nameof(SmallDatasets))]
    public void PreparePrintsCorrectCounts(string relative, string format) => PrepareAndCheck(relative, format);

    [Theory]
    [Trait("Category", "Slow")]
    [MemberData(nameof(AllDatasets))]
    public void PreparePrintsCorrectCountsOnEveryDataset(string relative, string format) => PrepareAndCheck(relative, format);

    [Fact]
    public void PrepareRefusesBadArgumentsWithAMessage()
    {
        var (rc, _, err) = Cli("prepare", "--data", "/nonexistent.json", "--format", "alpaca", "--tokenizer", "x", "--template", "alpaca", "--out", Path.GetTempPath());
        Assert.Equal(2, rc);
        Assert.Contains("/nonexistent.json", err);
        var cfg = Path.Combine(Directory.CreateTempSubdirectory().FullName, "c.yaml");
        File.WriteAllText(cfg, "data: x.json\nformat: alpaca\nbogus: 1\n");
        (rc, _, err) = Cli("prepare", "--config", cfg);
        Assert.Equal(2, rc);
        Assert.Contains("unknown key 'bogus'", err);
        (rc, _, err) = Cli("prepare", "--data", "x", "--format", "yaml", "--tokenizer", "x", "--template", "alpaca", "--out", "o");
        Assert.Contains("unknown data format 'yaml'", err);
    }

    [Fact]
    public void PrepareReadsAYamlConfig()
    {
        var dir = Directory.CreateTempSubdirectory("itune-cli").FullName;
        var cfg = Path.Combine(dir, "prep.yaml");
        File.WriteAllText(cfg, $"data: {TestPaths.SharedTestData("datasets", "dolly-15k", "databricks-dolly-15k.head70.jsonl")}\nformat: dolly\n" +
            $"tokenizer: {TestPaths.SharedTestData("tokenizers", "llama2")}\ntemplate: alpaca\nout: {Path.Combine(dir, "out")}\nmax_seq_len: 256\n");
        var (rc, output, err) = Cli("prepare", "--config", cfg);
        Assert.True(rc == 0, err);
        Assert.Contains("records read", output);
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "out", "stats.json")));
        Assert.Equal(256, stats.RootElement.GetProperty("tokens").GetProperty("max").GetInt32());
    }

    [Fact]
    public void TasksWritesTheSuiteAndItsSplits()
    {
        var dir = Directory.CreateTempSubdirectory("itune-tasks").FullName;
        var (rc, output, _) = Cli("tasks", "--out", dir, "--seed", "7");
        Assert.Equal(0, rc);
        var all = File.ReadAllLines(Path.Combine(dir, "suite.jsonl"));
        int sum = 0;
        foreach (var split in InstructTune.Data.TaskSuite.SuiteSplit.All)
        {
            var lines = File.ReadAllLines(Path.Combine(dir, split + ".jsonl"));
            Assert.NotEmpty(lines);
            sum += lines.Length;
            Assert.Contains(split, output);
        }
        Assert.Equal(all.Length, sum);
        // The JSONL is alpaca-compatible: it loads with the alpaca loader and keeps the family as task label.
        var records = DatasetLoader.Read(Path.Combine(dir, "train.jsonl"), new LoadOptions(DataFormat.Alpaca)).Select(i => i.Record!).ToList();
        Assert.Contains(records, r => r.Task == "reverse_word");
        var again = Directory.CreateTempSubdirectory("itune-tasks").FullName;
        Cli("tasks", "--out", again, "--seed", "7");
        Assert.Equal(all, File.ReadAllLines(Path.Combine(again, "suite.jsonl")));
    }
}
