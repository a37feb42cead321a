using System.Text.Json;

namespace InstructTune.Tests.Hostile;

/// <summary>Hostile dataset files through <c>itune prepare</c> (train reads data through the same pipeline).</summary>
[Collection("Probes")]
public class DataProbeTests
{
    private static ProbeResult Prepare(string data, string format, params string[] extra) =>
        Probe.Run(["prepare", "--data", data, "--format", format, "--tokenizer", HostileWorkspace.Model, "--template", "alpaca",
                   "--out", HostileWorkspace.NewFolder("prep"), .. extra]);

    private static JsonElement Stats(ProbeResult r)
    {
        var report = r.Stdout.Split('\n').First(l => l.StartsWith("stats: ")).Substring(7).Split(';')[0].Trim();
        var path = Path.Combine(Path.GetDirectoryName(report)!, "stats.json");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    [Fact]
    public void LoneSurrogateEscapeIsARejectedRecordNotACrash()
    {
        var dir = HostileWorkspace.NewFolder("sur");
        var path = Path.Combine(dir, "sur.jsonl");
        File.WriteAllText(path, "{\"instruction\":\"a\\ud800b\",\"input\":\"\",\"output\":\"x\"}\n{\"instruction\":\"ok\",\"input\":\"\",\"output\":\"y\"}\n");
        Probe.AssertClearError(Prepare(path, "alpaca"), "sur.jsonl:1", "surrogate");
        var skipped = Probe.AssertSuccess(Prepare(path, "alpaca", "--skip-invalid"));
        Assert.Equal(1, Stats(skipped).GetProperty("records_kept").GetInt32());
        Assert.Equal(1, Stats(skipped).GetProperty("records_rejected").GetInt32());
    }

    [Fact]
    public void FolderAsDataPathIsRefused()
    {
        var dir = HostileWorkspace.NewFolder("dirdata");
        Directory.CreateDirectory(Path.Combine(dir, "data.jsonl"));
        Probe.AssertClearError(Prepare(Path.Combine(dir, "data.jsonl"), "alpaca"), "data.jsonl", "folder");
    }

    [Fact]
    public void FifoAsDataFileIsRefusedWithoutWaiting()
    {
        var dir = HostileWorkspace.NewFolder("fifo");
        var fifo = Path.Combine(dir, "data.jsonl");
        using (var mk = System.Diagnostics.Process.Start("mkfifo", fifo)) { mk.WaitForExit(); Assert.Equal(0, mk.ExitCode); }
        Probe.AssertClearError(Prepare(fifo, "alpaca"), "data.jsonl", "FIFO");
    }

    [Fact]
    public void ArrayRecordMissingItsBraceCostsOnlyThatRecord()
    {
        var dir = HostileWorkspace.NewFolder("brace");
        var path = Path.Combine(dir, "data.json");
        var good = Enumerable.Range(0, 8).Select(i => $"{{\"instruction\":\"task {i}\",\"output\":\"answer {i}\"}}").ToList();
        var broken = "{\"instruction\":\"broken\",\"output\":\"no brace\"";
        File.WriteAllText(path, "[\n" + string.Join(",\n", good.Take(2).Append(broken).Concat(good.Skip(2))) + "\n]\n");
        Probe.AssertClearError(Prepare(path, "alpaca"), "data.json:4", "not closed");
        var r = Probe.AssertSuccess(Prepare(path, "alpaca", "--skip-invalid"));
        Assert.Equal(8, Stats(r).GetProperty("records_kept").GetInt32());
        Assert.Equal(1, Stats(r).GetProperty("records_rejected").GetInt32());
    }

    [Fact]
    public void CsvRowWithWrongColumnCountAndDuplicatedHeaderAreRefused()
    {
        var dir = HostileWorkspace.NewFolder("csv");
        var rows = Path.Combine(dir, "rows.csv");
        File.WriteAllText(rows, "instruction,input,output\na,b,c\na,b,c,d\n");
        Probe.AssertClearError(Prepare(rows, "csv"), "rows.csv:3", "4 columns");
        var dup = Path.Combine(dir, "dup.csv");
        File.WriteAllText(dup, "instruction,output,output\na,b,c\n");
        Probe.AssertClearError(Prepare(dup, "csv"), "dup.csv:1", "'output'");
    }

    /// <summary>
    /// One record of 10/20/40 MB cut to 128 tokens: the reader cuts each string at (128 + 16) × 256 bytes while it
    /// streams (<c>LoadOptions.CutFor</c>), so peak memory is the fixed overhead plus about the kept part.
    /// Bound asserted: under 10 × the kept part + 150 MB of fixed overhead (runtime, tokenizer, pipeline).
    /// </summary>
    [Theory]
    [InlineData(10)]
    [InlineData(20)]
    [InlineData(40)]
    public void HugeRecordCostsMemoryForWhatIsKept(int megabytes)
    {
        var dir = HostileWorkspace.NewFolder("huge");
        var path = Path.Combine(dir, "huge.jsonl");
        using (var w = new StreamWriter(path))
        {
            // The huge string is the response, so truncation keeps learned tokens (a huge prompt would leave none
            // and the record would be dropped as no_learned_tokens instead of truncated).
            w.Write("{\"instruction\":\"Repeat.\",\"input\":\"\",\"output\":\"");
            var chunk = string.Concat(Enumerable.Repeat("word ", 200));
            for (long n = 0; n < megabytes * (1L << 20); n += chunk.Length) w.Write(chunk);
            w.Write("\"}\n");
        }
        var r = Probe.AssertSuccess(Prepare(path, "alpaca", "--max-seq-len", "128", "data.too_long=truncate"));
        long kept = global::InstructTune.Data.Loading.LoadOptions.CutFor(128);
        Assert.True(r.PeakBytes < 10 * kept + (150L << 20), r.ToString());
        Assert.Equal(1, Stats(r).GetProperty("truncated").GetInt32());
    }
}
