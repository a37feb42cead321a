// `itune serve` and `itune export gguf` refuse bad settings with one line naming the key or option (exit 2).
using InstructTune.Cli;
using InstructTune.Tests.Checkpoints;
using InstructTune.Tests.Models;

namespace InstructTune.Tests.Serving;

[Collection("Console")]
public class ServeCliTests
{
    private static (int Rc, string Err) Run(params string[] args)
    {
        var (rc, _, err) = TestConsole.Run(args);
        return (rc, err);
    }

    [Fact]
    public void Bad_serve_and_export_settings_are_named()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["c.yaml"], "model:\n  path: " + ServeTestModel.Model + "\nserve:\n  max_concurent: 4\n");
        var (rc, err) = Run("serve", "--config", tmp["c.yaml"]);
        Assert.Equal(2, rc);
        Assert.Contains("serve.max_concurent", err);
        (rc, err) = Run("serve", "--model", ServeTestModel.Model, "serve.max_concurrent=0");
        Assert.Equal(2, rc);
        Assert.Contains("serve.max_concurrent", err);
        (rc, err) = Run("serve", "--model", ServeTestModel.Model, "--adapter", "noequals");
        Assert.Equal(2, rc);
        Assert.Contains("NAME=DIR", err);
        (rc, err) = Run("serve", "--model", ServeTestModel.Model, "--api-key-env", "ITUNE_SURELY_UNSET_VAR");
        Assert.Equal(2, rc);
        Assert.Contains("ITUNE_SURELY_UNSET_VAR", err);
        (rc, err) = Run("export", "gguf", "--model", GoldenFixture.Dir("llama_gqa_f32"), "--out", tmp["x.gguf"], "--dtype", "q4_k");
        Assert.Equal(2, rc);
        Assert.Contains("--dtype q4_k", err);
        Assert.False(File.Exists(tmp["x.gguf"]));
    }
}
