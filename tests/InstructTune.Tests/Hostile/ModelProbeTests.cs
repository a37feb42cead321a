using System.Diagnostics;
using System.Text.Json.Nodes;
using InstructTune.Training.Checkpointing;

namespace InstructTune.Tests.Hostile;

/// <summary>Hostile configs, checkpoints and run folders through init, score, convert and train.</summary>
[Collection("Probes")]
public class ModelProbeTests
{
    private static string Fixture => TestPaths.Fixtures("models", "llama_gqa_f32");

    private static string ConfigWith(string key, JsonNode? value)
    {
        var c = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture, "config.json")))!.AsObject();
        c[key] = value;
        var path = Path.Combine(HostileWorkspace.NewFolder("cfgjson"), "config.json");
        File.WriteAllText(path, c.ToJsonString());
        return path;
    }

    [Theory]
    [InlineData("num_hidden_layers", 1_000_000, "num_hidden_layers 1000000")]
    [InlineData("rms_norm_eps", -1, "rms_norm_eps")]
    [InlineData("rope_theta", 0, "rope_theta")]
    [InlineData("rope_theta", -1, "rope_theta")]
    public void InitRefusesBadConfigValuesNamingTheKey(string key, double value, string named)
    {
        var cfg = ConfigWith(key, value == Math.Floor(value) ? JsonValue.Create((long)value) : JsonValue.Create(value));
        Probe.AssertClearError(Probe.Run(["init", "--config", cfg, "--out", HostileWorkspace.NewFolder("init")]), "config.json", named);
    }

    [Fact]
    public void InitRefusesATensorOver2Pow31Elements()
    {
        var c = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture, "config.json")))!.AsObject();
        c["vocab_size"] = 200_000; c["hidden_size"] = 16_384; c["num_attention_heads"] = 128; c["num_key_value_heads"] = 128;
        var path = Path.Combine(HostileWorkspace.NewFolder("big"), "config.json");
        File.WriteAllText(path, c.ToJsonString());
        Probe.AssertClearError(Probe.Run(["init", "--config", path, "--out", HostileWorkspace.NewFolder("init")]), "config.json", "embed_tokens", "elements");
    }

    private static string CopyOfFixture()
    {
        var dir = HostileWorkspace.NewFolder("model");
        foreach (var f in Directory.GetFiles(Fixture)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    [Fact]
    public void ConfigWithFewerLayersThanTheCheckpointIsRefused()
    {
        var dir = CopyOfFixture();
        var c = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        c["num_hidden_layers"] = 1;
        File.WriteAllText(Path.Combine(dir, "config.json"), c.ToJsonString());
        var input = Path.Combine(dir, "in.jsonl");
        File.WriteAllText(input, "{\"ids\":[1,2,3]}\n");
        Probe.AssertClearError(Probe.Run(["score", "--model", dir, "--input", input]), "model.safetensors", "model.layers.1.");
        Probe.AssertClearError(Probe.Run(["merge", "--model", dir, "--adapter", dir, "--out", HostileWorkspace.NewFolder("m")]), "model.layers.1.");
    }

    [Fact]
    public void DirectoryOrFifoInPlaceOfAShardIsRefused()
    {
        var dir = CopyOfFixture();
        File.Delete(Path.Combine(dir, "model.safetensors"));
        Directory.CreateDirectory(Path.Combine(dir, "model.safetensors"));
        var input = Path.Combine(dir, "in.jsonl");
        File.WriteAllText(input, "{\"ids\":[1,2,3]}\n");
        Probe.AssertClearError(Probe.Run(["score", "--model", dir, "--input", input]), "model.safetensors", "folder");
        Directory.Delete(Path.Combine(dir, "model.safetensors"));
        using (var mk = Process.Start("mkfifo", Path.Combine(dir, "model.safetensors"))) mk.WaitForExit();
        Probe.AssertClearError(Probe.Run(["score", "--model", dir, "--input", input]), "model.safetensors", "FIFO");
    }

    [Fact]
    public void SingleFileWriteIntoAShardedFolderClearsTheStaleIndexAndShards()
    {
        var outDir = HostileWorkspace.NewFolder("convert");
        Probe.AssertSuccess(Probe.Run(["convert", "--model", Fixture, "--out", outDir, "--dtype", "float32", "--shard-size", "40KB"]));
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors.index.json")));
        Probe.AssertSuccess(Probe.Run(["convert", "--model", Fixture, "--out", outDir, "--dtype", "bfloat16"]));
        Assert.False(File.Exists(Path.Combine(outDir, "model.safetensors.index.json")));
        Assert.Empty(Directory.GetFiles(outDir, "model-*-of-*.safetensors"));
        using var ckpt = new global::InstructTune.Checkpoints.CheckpointFolder(outDir);
        Assert.Equal(global::InstructTune.Checkpoints.DType.BF16, ckpt.Find("model.norm.weight").Info.DType);   // the new weights are served
    }

    private static string TrainConfig(string runDir, int saveEvery) 
    {
        var path = Path.Combine(HostileWorkspace.NewFolder("train"), "train.yaml");
        File.WriteAllText(path, $"""
            model:
              path: {HostileWorkspace.Model}
            data:
              path: {HostileWorkspace.Data}
              format: alpaca
              template: "Q: {"{instruction}{input}"} A: {"{output}"}"   # alpaca's header alone fills 48 tokens: nothing would be learned
              max_seq_len: 48
              validation_fraction: 0
            training:
              method: lora
              max_steps: 4
              micro_batch_size: 2
              learning_rate: 0.001
              warmup_steps: 0
            lora:
              rank: 2
              alpha: 4
            checkpoint:
              output_dir: {runDir}
              save_every_steps: {saveEvery}
            logging:
              tensor_board: false
              progress: false
            """);
        return path;
    }

    [Fact]
    public void CorruptTrainerStateOnResumeIsAClearError()
    {
        var run = Path.Combine(HostileWorkspace.NewFolder("run"), "out");
        var cfg = TrainConfig(run, 2);
        Probe.AssertSetupSucceeded(Probe.Run(["train", "--config", cfg], timeoutSeconds: 180));   // set-up, not the probe
        var latest = new CheckpointStore(run).Latest()!;
        File.WriteAllText(Path.Combine(latest, TrainerCheckpoint.StateFile), "{\"Step\": 4, \"Sampler\": ");
        Probe.AssertClearError(Probe.Run(["train", "--config", cfg, "--resume", latest, "training.max_steps=6"]), "trainer_state.json", "damaged");
    }

    /// <summary>A real full disk: the run folder on a small tmpfs (root, as CI runs), filled after the first checkpoint.</summary>
    [Fact]
    public void FullDiskWhileCheckpointingIsAClearErrorAndTheLastCheckpointStays()
    {
        var mount = HostileWorkspace.NewFolder("tmpfs");
        using (var m = Process.Start("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mount])) { m.WaitForExit(); Assert.True(m.ExitCode == 0, "mounting a tmpfs needs root (CI runs as root)"); }
        try
        {
            var run = Path.Combine(mount, "out");
            var cfg = TrainConfig(run, 1);
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "itune.dll"), "train", "--config", cfg }) psi.ArgumentList.Add(a);
            psi.Environment["ITUNE_TEST_CHECKPOINT_SLEEP_MS"] = "1500";
            using var p = Process.Start(psi)!;
            var stderrTask = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEndAsync();
            var store = new CheckpointStore(run);
            var clock = Stopwatch.StartNew();
            while (store.Latest() == null && !p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(20);
            Assert.NotNull(store.Latest());
            // Fill the file system: the next checkpoint (or log line) hits ENOSPC.
            try { using var fill = File.OpenWrite(Path.Combine(mount, "filler")); var block = new byte[1 << 16]; while (true) fill.Write(block); }
            catch (IOException) { }
            Assert.True(p.WaitForExit(60_000));
            var err = stderrTask.Result;
            Assert.Equal(2, p.ExitCode);
            Assert.Contains("No space left on device", err);
            Assert.Contains(run, err);
            Assert.DoesNotContain("   at ", err);
            File.Delete(Path.Combine(mount, "filler"));
            Assert.Empty(Directory.GetDirectories(run, ".tmp-*"));
            var latest = store.Latest()!;
            using var w = global::InstructTune.Checkpoints.SafetensorsFile.Open(Path.Combine(latest, TrainerCheckpoint.WeightsFile));   // complete and valid
            Assert.NotEmpty(w.Tensors);
        }
        finally
        {
            using var u = Process.Start("umount", ["-l", mount]);
            u.WaitForExit();
        }
    }
}
