namespace InstructTune.Tests.Hostile;

/// <summary>Hostile judge endpoints through <c>itune eval judge</c> (the client itself is issue 13's; its body cap is
/// tested against the fake server in Evaluation/Judge).</summary>
[Collection("Probes")]
public class JudgeProbeTests
{
    private static string Input()
    {
        var path = Path.Combine(HostileWorkspace.NewFolder("judge"), "j.jsonl");
        File.WriteAllText(path, "{\"id\":\"1\",\"instruction\":\"a\",\"response\":\"b\"}\n");
        return path;
    }

    [Fact]
    public void InvalidBaseUrlIsAClearError() =>
        Probe.AssertClearError(Probe.Run(["eval", "judge", "--input", Input(), "--out", HostileWorkspace.NewFolder("jo"), "--base-url", "not a url", "--model", "m"]),
            "\"not a url\"");

    [Fact]
    public void RefusedConnectionIsNamedNotHttp0()
    {
        var outDir = HostileWorkspace.NewFolder("jo");
        var r = Probe.Run(["eval", "judge", "--input", Input(), "--out", outDir, "--base-url", "http://127.0.0.1:9/v1", "--model", "m"], timeoutSeconds: 30);
        Assert.Equal(1, r.ExitCode);   // the command ran; the judgement failed and says why
        var line = File.ReadAllText(Path.Combine(outDir, "judgements.jsonl"));
        Assert.Contains("connection refused", line);
        Assert.DoesNotContain("HTTP 0", line);
    }
}
