using System.Diagnostics;
using InstructTune.Common;

namespace InstructTune.Tests.Hostile;

/// <summary>
/// Output to special files: written through, never replaced. Never touches the real /dev/null: the test makes its
/// own null device with mknod (root, as CI runs) and its own FIFO.
/// </summary>
[Collection("Probes")]
public class OutputProbeTests
{
    private static string Tokenizer => TestPaths.SharedTestData("tokenizers", "gpt2");

    private static string Input(string dir)
    {
        var input = Path.Combine(dir, "in.jsonl");
        File.WriteAllText(input, "{\"text\":\"hello world\"}\n");
        return input;
    }

    private static void Run(string program, params string[] args)
    {
        using var p = Process.Start(program, args);
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{program} {string.Join(' ', args)} failed (needs root, as CI runs)");
    }

    [Fact]
    public void CharacterDeviceIsWrittenThroughNotReplaced()
    {
        var dir = HostileWorkspace.NewFolder("out");
        var device = Path.Combine(dir, "null");
        Run("mknod", device, "c", "1", "3");     // the same device as /dev/null
        Probe.AssertSuccess(Probe.Run(["tokenize", "--tokenizer", Tokenizer, "--input", Input(dir), "--output", device]));
        Assert.Equal(PathKind.CharDevice, FileKind.Of(device));
        Assert.Empty(Directory.GetFiles(dir, ".*tmp"));
    }

    [Fact]
    public void FifoIsWrittenThroughNotReplaced()
    {
        var dir = HostileWorkspace.NewFolder("out");
        var fifo = Path.Combine(dir, "pipe");
        Run("mkfifo", fifo);
        var reader = Task.Run(() => File.ReadAllText(fifo));
        Probe.AssertSuccess(Probe.Run(["tokenize", "--tokenizer", Tokenizer, "--input", Input(dir), "--output", fifo]));
        Assert.True(reader.Wait(10_000));
        Assert.Equal("{\"ids\":[31373,995]}\n", reader.Result);
        Assert.Equal(PathKind.Fifo, FileKind.Of(fifo));
    }

    [Fact]
    public void DashIsStandardOutputAndSymlinksStayLinks()
    {
        var dir = HostileWorkspace.NewFolder("out");
        var r = Probe.AssertSuccess(Probe.Run(["tokenize", "--tokenizer", Tokenizer, "--input", Input(dir), "--output", "-"]));
        Assert.Equal("{\"ids\":[31373,995]}\n", r.Stdout);
        var target = Path.Combine(dir, "real.jsonl");
        File.WriteAllText(target, "old\n");
        var link = Path.Combine(dir, "link.jsonl");
        File.CreateSymbolicLink(link, target);
        Probe.AssertSuccess(Probe.Run(["chat-template", "--builtin", "chatml", "--input", WriteMessages(dir), "--output", link]));
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Contains("<|im_start|>user", File.ReadAllText(target));
    }

    [Fact]
    public void FolderAsOutputFileIsRefused()
    {
        var dir = HostileWorkspace.NewFolder("out");
        Directory.CreateDirectory(Path.Combine(dir, "o.jsonl"));
        Probe.AssertClearError(Probe.Run(["tokenize", "--tokenizer", Tokenizer, "--input", Input(dir), "--output", Path.Combine(dir, "o.jsonl")]), "o.jsonl", "folder");
    }

    private static string WriteMessages(string dir)
    {
        var path = Path.Combine(dir, "m.jsonl");
        File.WriteAllText(path, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n");
        return path;
    }
}
