using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Models.InstructionAware;
using InstructTune.Recipes;
using InstructTune.Tests.Training;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Models.InstructionAware;

/// <summary>model.instruction_aware from a recipe: the new parameters train beside LoRA or the full model, are
/// exported as instruction_aware.safetensors + instructtune.json, and the inference path reproduces the trained logits.</summary>
public class InstructionAwareRecipeTests
{
    private static TrainConfig Config(string modelDir, string data, params string[] extra) =>
        ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128", RecipeSetupTests.ShortTemplate,
            "model.instruction_aware.segment_embeddings=true", "model.instruction_aware.gate_layers=[0]", "model.instruction_aware.two_stream_layers=1",
            "model.instruction_aware.cot_width=4", "model.instruction_aware.instruction_embedding=true",
            $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}", "training.max_steps=3",
            "training.learning_rate=1e-2", "logging.tensor_board=false", .. extra]);

    [Theory]
    [InlineData("lora")]
    [InlineData("full")]
    public void TheVariantsTrainExportAndServeInference(string method)
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var recipe = FineTuneRecipe.Setup(Config(modelDir, data, $"training.method={method}"));
        var names = recipe.Trainer.Trainable.Select(t => t.Name).ToList();
        Assert.Contains("instruction_aware.segment_embeddings.weight", names);
        Assert.Contains("instruction_aware.gates.0.scale", names);
        Assert.Contains("instruction_aware.fusion.c_proj.weight", names);
        Assert.Contains("instruction_aware.cot.out_3.weight", names);
        Assert.Contains("instruction_aware.instruction_embedding.weight", names);
        var summary = recipe.Train(quiet: true);

        Assert.True(File.Exists(Path.Combine(summary.ExportDir, InstructionAwareFile.FileName)));
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(summary.ExportDir, "instructtune.json"))))
        {
            var ia = json.RootElement.GetProperty("instruction_aware");
            Assert.True(ia.GetProperty("segment_embeddings").GetBoolean());
            Assert.Equal(0, ia.GetProperty("gate_layers")[0].GetInt32());
            Assert.Equal(1, ia.GetProperty("two_stream_layers").GetInt32());
            Assert.True(json.RootElement.TryGetProperty("prompt_format", out _));
        }
        var metrics = File.ReadAllLines(Path.Combine(summary.RunDir, "metrics.jsonl"));
        Assert.Contains(metrics, l => l.Contains("instruction_gate_mean/layer_0"));   // per-layer gate statistics
        var scale = recipe.Model.GetParameter("instruction_aware.gates.0.scale").ToArray();
        Assert.Contains(scale, v => v != 0);                                        // it trained
        Assert.Contains(recipe.Model.GetParameter("instruction_aware.fusion.c_proj.weight").ToArray(), v => v != 0);
        Assert.NotEqual(recipe.Model.GetParameter("model.embed_tokens.weight").ToArray(), recipe.Model.GetParameter("instruction_aware.instruction_embedding.weight").ToArray());

        int[] ids = [5, 17, 42, 8, 99, 3, 7];
        int[] segs = [0, 1, 1, 2, 0, 3, 3];
        float[] expected;
        using (Tape.Record(recordGrad: false))
            expected = recipe.Model.Forward(new LlamaBatch(new IntTensor(ids, 1, ids.Length)) { Segments = new IntTensor(segs, 1, segs.Length) }).Logits!.ToArray();
        using var loaded = method == "full" ? LoadedModel.Load(summary.ExportDir) : LoadedModel.Load(modelDir, summary.ExportDir);
        Assert.NotNull(loaded.Model.InstructionAware);
        var got = loaded.Model.Forward([new SequenceChunk(loaded.Model.CreateCache(ids.Length), ids, AllLogits: true, Segments: [.. segs.Select(s => (byte)s)])]);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-4, $"logit {i}: trained {expected[i]}, loaded {got[i]}");
        if (method == "full")
            using (var st = InstructTune.Checkpoints.SafetensorsFile.Open(Path.Combine(summary.ExportDir, "model.safetensors")))
                Assert.DoesNotContain(st.Tensors.Keys, k => k.StartsWith("instruction_aware.", StringComparison.Ordinal)); // the base stays HF-clean
    }

    [Theory]
    [InlineData("data.format=text", "data.format text")]
    [InlineData("training.method=prompt_tuning data.pack=false", "prompt_tuning")]
    [InlineData("model.instruction_aware.gate_layers=[5]", "model.instruction_aware.gate_layers")]
    [InlineData("model.instruction_aware.two_stream_layers=9", "model.instruction_aware.two_stream_layers")]
    public void WhatCannotGiveSegmentsIsRefusedNamingTheKey(string overrides, string named)
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(modelDir, data, overrides.Split(' '))));
        Assert.Contains("model.instruction_aware", e.Message);
        Assert.Contains(named, e.Message);
    }
}
