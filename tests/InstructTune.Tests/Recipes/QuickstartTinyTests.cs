using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Cli;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Recipes.Quickstart;
using Xunit;

namespace InstructTune.Tests.Recipes;

/// <summary>`itune quickstart --tiny` end to end in-process: every output file exists and has the promised shape.</summary>
[Collection("Console")]
public sealed class QuickstartTinyTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "itune-qs-" + Guid.NewGuid().ToString("N"));

    public void Dispose() { if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true); }

    [Fact]
    public void TinyRunWritesEveryOutput()
    {
        var (rc, stdout, _) = TestConsole.Run("quickstart", "--tiny", "--out", _out, "--seed", "7");

        Assert.Equal(0, rc);
        var report = Path.Combine(_out, "report.html");
        Assert.Contains("Report: " + report, stdout);

        // results.json: the keys, exact-match values in [0, 1], a positive time.
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "results.json")));
        var root = results.RootElement;
        double minutes = root.GetProperty("minutes").GetDouble();
        Assert.InRange(minutes, 1e-6, 5);
        foreach (var phase in new[] { "before", "after" })
        {
            var scores = root.GetProperty(phase);
            Assert.Equal(3, scores.EnumerateObject().Count());
            foreach (var key in new[] { "em_heldout_examples", "em_heldout_phrasings", "em_heldout_compositions" })
                Assert.InRange(scores.GetProperty(key).GetDouble(), 0.0, 1.0);
        }

        // The base model in HF layout with its tokenizer; the adapter in PEFT layout, loadable and applicable.
        var baseDir = Path.Combine(_out, "base");
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(baseDir, f)), $"base/{f} missing");
        var adapterDir = Path.Combine(_out, "adapter");
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapterDir, "adapter_config.json")));
        Assert.Equal("LORA", config.RootElement.GetProperty("peft_type").GetString());
        Assert.Equal(QuickstartOptions.Tiny.LoraRank, config.RootElement.GetProperty("r").GetInt32());
        using (var tensors = SafetensorsFile.Open(Path.Combine(adapterDir, "adapter_model.safetensors")))
        {
            Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", tensors.Tensors.Keys);
            Assert.Contains("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", tensors.Tensors.Keys);
            Assert.All(tensors.Tensors.Keys, n => Assert.StartsWith("base_model.model.model.layers.", n));
        }
        var adapter = LoraAdapterFile.Load(adapterDir);
        Assert.Equal(7 * QuickstartOptions.Tiny.Layers, adapter.Deltas.Count);
        using (var model = InferenceModel.Load(baseDir)) model.ApplyAdapter(adapter);

        // The report holds the before/after table with every evaluated split, and the loss curves.
        var html = File.ReadAllText(report);
        Assert.Contains("<table", html);
        Assert.Contains("Exact match before and after tuning", html);
        foreach (var split in QuickstartData.EvalSplits) Assert.Contains(split, html);
        Assert.Contains("<svg", html);
        Assert.Contains("LoRA tuning", html);
    }
}
