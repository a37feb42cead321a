using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft;
using InstructTune.Recipes;
using InstructTune.Training.Config;
using InstructTune.Tests.Training;

namespace InstructTune.Tests.Peft;

/// <summary>Each PEFT method from a recipe key: trains only its parameters, exports a PEFT adapter, and the exported
/// adapter gives score/eval (the inference path) the logits the trained model computes.</summary>
public class PeftRecipeTests
{
    [Theory]
    [InlineData("lora.use_dora=true", "LORA", ".lora_", 1 * 7 * 3)]
    [InlineData("training.method=ia3", "IA3", ".ia3_l", 1 * 3)]
    [InlineData("training.method=ipeft ipeft.rank=4", "IPEFT", "ipeft_", 1 * 2 * 2 + 2)]
    [InlineData("training.method=iapt iapt.num_virtual_tokens=3 iapt.bottleneck=4", "IAPT", "iapt_generator.", 1 * 5)]
    [InlineData("training.method=iasft iasft.fraction=0.02 iasft.fisher_batches=2", "IASFT", ".iasft_values", 1 * 7 * 2)]
    [InlineData("training.method=iasft iasft.fraction=0.01 iasft.selection=global iasft.target_modules=[q_proj,down_proj]", "IASFT", ".iasft_values", -1)]
    [InlineData("training.method=prompt_tuning data.pack=false data.max_seq_len=100 prompt_tuning.num_virtual_tokens=5 prompt_tuning.init=text prompt_tuning.init_text=Say", "PROMPT_TUNING", "prompt_encoder.", 1)]
    [InlineData("training.method=prefix_tuning data.pack=false data.max_seq_len=100 prefix_tuning.num_virtual_tokens=4 prefix_tuning.prefix_projection=true", "PREFIX_TUNING", "prefix_encoder.", 1)]
    public void AMethodTrainsFromItsKeyAndItsAdapterServesInference(string key, string peftType, string marker, int tensors)
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128", RecipeSetupTests.ShortTemplate, .. key.Split(' '),
            $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}", "training.max_steps=3",
            "training.learning_rate=1e-2", "logging.tensor_board=false"]);
        var recipe = FineTuneRecipe.Setup(config);
        Assert.All(recipe.Trainer.Trainable, t => Assert.Contains(marker, t.Name));
        long trainable = recipe.Trainer.Trainable.Sum(t => (long)t.Parameter.Length);
        Assert.Contains($"{trainable:N0} trainable parameters", recipe.Footprint());
        var summary = recipe.Train(quiet: true);
        Assert.Equal(3, summary.Steps);

        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(summary.ExportDir, "adapter_config.json"))))
            Assert.Equal(peftType, json.RootElement.GetProperty("peft_type").GetString());
        using (var st = InstructTune.Checkpoints.SafetensorsFile.Open(Path.Combine(summary.ExportDir, "adapter_model.safetensors")))
            if (tensors >= 0) Assert.Equal(tensors, st.Tensors.Count);
            else Assert.All(st.Tensors.Keys, k => Assert.Matches(@"\.(q_proj|down_proj)\.weight\.iasft_", k));

        // The exported adapter, applied by the inference path, reproduces the trained model.
        var trained = recipe.Model;
        int[] ids = [5, 17, 42, 8, 99, 3];
        float[] expected;
        using (Tape.Record(recordGrad: false))
            expected = trained.Forward(new LlamaBatch(new Engine.Tensors.IntTensor(ids, 1, ids.Length))).Logits!.ToArray();
        using var loaded = LoadedModel.Load(modelDir, summary.ExportDir);
        var got = loaded.Model.Forward([new SequenceChunk(loaded.Model.CreateCache(ids.Length), ids, AllLogits: true)]);
        LoraInvariantTests.AssertClose(expected, got, 1e-4f);
        using var plain = LoadedModel.Load(modelDir);
        var baseLogits = plain.Model.Forward([new SequenceChunk(plain.Model.CreateCache(ids.Length), ids, AllLogits: true)]);
        Assert.True(expected.Zip(baseLogits).Max(p => Math.Abs(p.First - p.Second)) > 1e-4f, "training must have moved the adapter");
    }

    [Theory]
    [InlineData("training.method=prompt_tuning", "data.pack")]
    [InlineData("training.method=prefix_tuning data.pack=false prefix_tuning.num_virtual_tokens=200", "prefix_tuning.num_virtual_tokens")]
    [InlineData("training.method=prompt_tuning data.pack=false prompt_tuning.init=text", "prompt_tuning")]
    [InlineData("training.method=ia3 ia3.target_modules=[nope_proj] ia3.feedforward_modules=[]", "nope_proj")]
    [InlineData("training.method=iasft iasft.target_modules=[nope_proj]", "iasft.target_modules")]
    [InlineData("training.method=ipeft ipeft.target_modules=[nope_proj]", "ipeft.target_modules")]
    [InlineData("training.method=ipeft training.activation_checkpointing=true", "training.activation_checkpointing")]
    [InlineData("training.method=iasft iasft.target_modules=[lm_head]", "lm_head")]
    [InlineData("training.method=iapt training.activation_checkpointing=true", "training.activation_checkpointing")]
    [InlineData("training.method=iapt iapt.activation=swish", "iapt: activation 'swish'")]
    [InlineData("training.method=hint data.pack=false hint.encoder_layers=5", "hint: encoder_layers 5")]
    [InlineData("training.method=hint data.pack=false hint.target_modules=[nope_proj]", "nope_proj")]
    [InlineData("training.method=hint data.pack=false training.activation_checkpointing=true", "training.activation_checkpointing")]
    public void BadMethodSettingsAreRefusedInSetupNamingTheKey(string overrides, string named)
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128", RecipeSetupTests.ShortTemplate, .. overrides.Split(' '),
            $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}"]);
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(config));
        Assert.Contains(named, e.Message);
    }

    /// <summary>IAPT's and HINT's prompts hold no position, so their budget is the key's range: beyond it is refused naming the key.</summary>
    [Theory]
    [InlineData("iapt.num_virtual_tokens=1000", "iapt.num_virtual_tokens")]
    [InlineData("hint.num_virtual_tokens=0", "hint.num_virtual_tokens")]
    [InlineData("iapt.bottleneck=0", "iapt.bottleneck")]
    public void PromptCountsOutsideTheirRangeAreRefusedNamingTheKey(string key, string named)
    {
        var e = Assert.ThrowsAny<Exception>(() => ConfigLoader.LoadFromString<TrainConfig>("", ["model.path=m", "data.path=d", key]));
        Assert.Contains(named, e.Message);
    }
}
