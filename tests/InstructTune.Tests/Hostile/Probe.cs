using System.Diagnostics;
using System.Text;
using InstructTune.Checkpoints;
using InstructTune.Models;
using InstructTune.Tokenizers.Training;

namespace InstructTune.Tests.Hostile;

/// <summary>What one itune child process did: exit code, output, wall time and peak working set.</summary>
public sealed record ProbeResult(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed, long PeakBytes, bool TimedOut)
{
    public double PeakMb => PeakBytes / (1024.0 * 1024.0);
    public override string ToString() =>
        $"exit {ExitCode}{(TimedOut ? " (killed: time limit)" : "")}, {Elapsed.TotalSeconds:F1} s, peak {PeakMb:F0} MB\nstderr: {Stderr}";
}

/// <summary>
/// Runs itune as a child process (<c>dotnet itune.dll …</c>) under a time limit and measures its peak working set
/// two ways: the process's own VmHWM, printed at exit (ITUNE_REPORT_PEAK=1), and VmHWM polled from
/// /proc/PID/status while it runs (which also covers a process killed at the time limit); the larger counts.
/// </summary>
/// <summary>The probes run alone, after the parallel tests (xUnit runs non-parallel collections by themselves): their
/// wall-clock limit (10 s) is issue 22's bound on the child process, not on the CPU left over by parallel tests.</summary>
[CollectionDefinition("Probes", DisableParallelization = true)]
public sealed class ProbesCollection;

public static class Probe
{
    public const int TimeLimitSeconds = 10;
    public const long MemoryLimitBytes = 500L << 20;
    private const string PeakMarker = "itune: peak working set ";

    private static string ItuneDll => Path.Combine(AppContext.BaseDirectory, "itune.dll");

    public static ProbeResult Run(string[] args, int timeoutSeconds = TimeLimitSeconds, string? workDir = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(ItuneDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["ITUNE_REPORT_PEAK"] = "1";
        psi.Environment["DOTNET_gcServer"] = "0";
        if (workDir != null) psi.WorkingDirectory = workDir;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (stdout) stdout.Append(e.Data).Append('\n'); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.Append(e.Data).Append('\n'); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        long polled = 0;
        bool timedOut = false;
        while (!p.WaitForExit(10))
        {
            polled = Math.Max(polled, VmHwm(p.Id));
            if (clock.Elapsed.TotalSeconds > timeoutSeconds)
            {
                timedOut = true;
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                break;
            }
        }
        p.WaitForExit();
        clock.Stop();
        string err;
        lock (stderr) err = stderr.ToString();
        long reported = 0;
        var kept = new StringBuilder();
        foreach (var line in err.Split('\n'))
        {
            if (line.StartsWith(PeakMarker, StringComparison.Ordinal)) reported = long.Parse(line[PeakMarker.Length..].Split(' ')[0]);
            else if (line.Length > 0) kept.Append(line).Append('\n');
        }
        lock (stdout) return new ProbeResult(timedOut ? 137 : p.ExitCode, stdout.ToString(), kept.ToString(), clock.Elapsed, Math.Max(polled, reported), timedOut);
    }

    private static long VmHwm(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0]) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return 0;
    }

    /// <summary>The clear-error contract: exit 2, one line naming each of <paramref name="mustName"/>, no stack trace,
    /// within the time limit and under the memory limit.</summary>
    public static ProbeResult AssertClearError(ProbeResult r, params string[] mustName)
    {
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("internal error", r.Stderr);
        Assert.DoesNotContain("Unhandled exception", r.Stderr);
        var errorLine = r.Stderr.Split('\n').FirstOrDefault(l => l.Contains(": error: ")) ?? "";
        foreach (var name in mustName) Assert.True(errorLine.Contains(name, StringComparison.Ordinal), $"the error line does not name '{name}'\n{r}");
        AssertBounded(r);
        return r;
    }

    public static void AssertBounded(ProbeResult r, long memoryLimit = MemoryLimitBytes)
    {
        Assert.True(r.Elapsed.TotalSeconds < TimeLimitSeconds, $"took {r.Elapsed.TotalSeconds:F1} s (limit {TimeLimitSeconds} s)\n{r}");
        Assert.True(r.PeakBytes > 0, "no peak working set was measured");
        Assert.True(r.PeakBytes < memoryLimit, $"peak {r.PeakMb:F0} MB (limit {memoryLimit >> 20} MB)\n{r}");
    }

    /// <summary>A set-up run that prepares a probe (not the probe itself): it must succeed within the time it was
    /// given (Run's timeoutSeconds), but issue 22's 10 s bound applies to the probe, not to its preparation.</summary>
    public static ProbeResult AssertSetupSucceeded(ProbeResult r)
    {
        Assert.False(r.TimedOut, r.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
        return r;
    }

    public static ProbeResult AssertSuccess(ProbeResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertBounded(r);
        return r;
    }
}

/// <summary>A tiny model (random Llama, byte-level BPE tokenizer) and a small alpaca file shared by the probes.</summary>
public static class HostileWorkspace
{
    private static readonly Lazy<string> Dir = new(Create);

    public static string Root => Dir.Value;
    public static string Model => Path.Combine(Root, "model");
    public static string Data => Path.Combine(Root, "train.jsonl");

    public static string NewFolder(string name) => Directory.CreateTempSubdirectory("hostile-" + name).FullName;

    private static string Create()
    {
        var dir = Directory.CreateTempSubdirectory("hostile").FullName;
        var lines = Enumerable.Range(0, 40).Select(i =>
            System.Text.Json.JsonSerializer.Serialize(new { instruction = $"Add {i} and {i + 1}.", input = "", output = $"{2 * i + 1}" })).ToList();
        File.WriteAllLines(Path.Combine(dir, "train.jsonl"), lines);
        var options = new BpeTrainerOptions(VocabSize: 300, MinFrequency: 2);
        var model = Path.Combine(dir, "model");
        ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(lines, options), options, model);
        RandomCheckpoint.Create(new LlamaConfig
        {
            VocabSize = 300, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2,
            NumKeyValueHeads = 1, MaxPositionEmbeddings = 128, BosTokenId = 0, EosTokenIds = [1],
        }, model, 1, DType.F32);
        return dir;
    }
}
