using InstructTune.Data.Records;
using InstructTune.Evaluation.ModelBackends;
using System.Text.Json;
using InstructTune.Cli.Serve;
using InstructTune.Data.Templating;
using InstructTune.Engine.Autograd;
using InstructTune.Generation;
using InstructTune.Serving;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Models.InstructionAware;
using InstructTune.Peft;
using InstructTune.Peft.Hint;
using InstructTune.Recipes;
using InstructTune.Tests.Models;
using InstructTune.Tests.Training;
using InstructTune.Training.Config;
using static InstructTune.Tests.Peft.LoraInvariantTests;

namespace InstructTune.Tests.Peft;

/// <summary>
/// HINT against PyTorch written from its formulas (tools/golden/hint.py → tests/fixtures/peft/hint.json). The instruction leaves each example's row and is encoded once per distinct instruction (task) per batch
/// (a counter), the examples run as the base model without their instruction at init, a step moves only HINT's
/// parameters, save → load reproduces the logits, and the recipe trains it from `training.method: hint`.
/// </summary>
public class HintTests
{
    internal static readonly HintConfig Config = new() { Rank = 4, Alpha = 8, NumVirtualTokens = 3, Bottleneck = 5 };

    // 4 rows, 2 tasks: rows 0 and 2 share instruction [11 12 13], rows 1 and 3 share [21 22]; segment 1 = instruction.
    private static readonly int[] Ids =
    [
        7, 11, 12, 13, 40, 41, 42, 43,
        7, 21, 22, 50, 51, 52, 53, 0,
        7, 11, 12, 13, 60, 61, 62, 0,
        7, 21, 22, 70, 71, 72, 73, 74,
    ];
    private static readonly int[] Segs =
    [
        0, 1, 1, 1, 2, 3, 3, 3,
        0, 1, 1, 2, 3, 3, 3, 0,
        0, 1, 1, 1, 2, 3, 3, 0,
        0, 1, 1, 2, 3, 3, 3, 3,
    ];
    private static readonly int[] Mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1];

    private static LlamaBatch TaskBatch(int[]? ids = null) => new(new IntTensor(ids ?? Ids, 4, 8))
    {
        Segments = new IntTensor(Segs, 4, 8), AttentionMask = new IntTensor(Mask, 4, 8),
        Labels = new IntTensor((ids ?? Ids).Select((x, i) => Segs[i] == 3 && Mask[i] == 1 ? x : -100).ToArray(), 4, 8),
    };

    /// <summary>The same examples without their instruction tokens, left-aligned, positions 0.. (what HINT's decoder runs).</summary>
    private static LlamaBatch Stripped()
    {
        int[][] rows = [[7, 40, 41, 42, 43], [7, 50, 51, 52, 53], [7, 60, 61, 62], [7, 70, 71, 72, 73, 74]];
        int T = 6; var ids = new int[4 * T]; var mask = new int[4 * T]; var pos = new int[4 * T];
        for (int b = 0; b < 4; b++) for (int t = 0; t < rows[b].Length; t++) { ids[b * T + t] = rows[b][t]; mask[b * T + t] = 1; pos[b * T + t] = t; }
        return new LlamaBatch(new IntTensor(ids, 4, T)) { AttentionMask = new IntTensor(mask, 4, T), PositionIds = new IntTensor(pos, 4, T) };
    }

    private static float[] Run(LlamaModel m, LlamaBatch b)
    {
        using var tape = Tape.Record(recordGrad: false);
        return m.Forward(b).Logits!.ToArray();
    }

    private static LlamaModel Perturbed(string kind, out HintHypernetwork hyper)
    {
        var model = TinyModel(kind);
        hyper = HintInjector.Inject(model, Config, 1);
        var rng = new Rng(5);
        foreach (var (name, p) in model.NamedParameters().Where(p => !p.Parameter.Frozen && (p.Name.Contains("gate") || p.Name.Contains("adapter_"))))
            rng.Normal(p.Span, 0, 0.5f);
        return model;
    }

    private static readonly JsonElement Golden = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("peft", "hint.json"))).RootElement;

    /// <summary>The golden's tiny Llama (tools/golden/hint.py) with HINT injected as the fixture describes and its parameters loaded.</summary>
    private static (LlamaModel Model, HintHypernetwork Hyper) GoldenModel()
    {
        var model = PeftGoldenTests.Model(Golden.GetProperty("config"));
        var hyper = HintInjector.Inject(model, new HintConfig
        {
            EncoderLayers = Golden.GetProperty("encoder_layers").GetInt32(), Rank = Golden.GetProperty("r").GetInt32(),
            Alpha = Golden.GetProperty("lora_alpha").GetDouble(), NumVirtualTokens = Golden.GetProperty("num_virtual_tokens").GetInt32(),
            Bottleneck = Golden.GetProperty("bottleneck").GetInt32(),
            TargetModules = Golden.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!).ToList(),
        }, 1);
        foreach (var p in Golden.GetProperty("params").EnumerateArray()) model.GetParameter(p.GetProperty("name").GetString()!).Load(PeftGoldenTests.Floats(p));
        return (model, hyper);
    }

    /// <summary>tools/golden/hint.py (PyTorch from the formulas: 4 examples of 2 tasks, instructions taken out and encoded
    /// by the base's first layer, generated gates and prompts): logits ≤ 1e-5, loss, and every HINT gradient ≤ 1e-5 of its scale.</summary>
    [Fact]
    public void LogitsLossAndGradientsMatchPyTorch()
    {
        var (model, hyper) = GoldenModel();
        PeftGoldenTests.AssertForwardAndGradientsMatch(model, Golden);
        Assert.Equal(2, hyper.Runs);                                          // 4 examples, 2 tasks
    }

    /// <summary>The inference path (saved base + adapter, one KV-cache prefill per example with its segments) gives the
    /// PyTorch logits of every kept token (≤ 1e-4) and encodes each of the 2 instructions once.</summary>
    [Fact]
    public void TheInferencePathGivesThePyTorchLogits()
    {
        var (model, _) = GoldenModel();
        var baseDir = Directory.CreateTempSubdirectory("hint-base").FullName;
        var adapterDir = Directory.CreateTempSubdirectory("hint-adapter").FullName;
        HintInjector.Save(model, adapterDir);
        var plain = new LlamaModel(model.Config with { ModelType = "qwen2" });   // q/k/v biases without o's: Qwen2's layout on disk
        HashInit.Initialize(plain);
        LlamaCheckpoint.Save(plain, baseDir);
        using var inference = InferenceModel.Load(baseDir);
        PeftRegistry.ApplyTo(inference, adapterDir);
        var shape = Golden.GetProperty("ids").GetProperty("shape");
        int B = shape[0].GetInt32(), T = shape[1].GetInt32(), V = inference.Config.VocabSize;
        var ids = PeftGoldenTests.Ints(Golden.GetProperty("ids")); var segs = PeftGoldenTests.Ints(Golden.GetProperty("segments"));
        var expected = PeftGoldenTests.Floats(Golden.GetProperty("logits"));
        for (int b = 0; b < B; b++)
        {
            var got = inference.Forward([new SequenceChunk(inference.CreateCache(T), ids[(b * T)..((b + 1) * T)], AllLogits: true,
                Segments: segs[(b * T)..((b + 1) * T)].Select(x => (byte)x).ToArray())]);
            for (int t = 0; t < T; t++)
                if (segs[b * T + t] != InstructionSpans.Instruction)
                    for (int v = 0; v < V; v++)
                        Assert.True(Math.Abs(got[t * V + v] - expected[(b * T + t) * V + v]) <= 1e-4f, $"row {b} token {t} logit {v}: torch {expected[(b * T + t) * V + v]}, ours {got[t * V + v]}");
        }
        Assert.Equal(2, inference.HintEncodings);
    }

    [Theory, InlineData("llama-gqa"), InlineData("qwen2-tied-bias")]
    public void TheHypernetworkRunsOncePerTaskPerBatchAndStartsAsTheBaseWithoutTheInstruction(string kind)
    {
        var model = TinyModel(kind);
        var hyper = HintInjector.Inject(model, Config, 1);
        var logits = Run(model, TaskBatch());
        Assert.Equal(2, hyper.Runs);                                         // 2 tasks, 4 examples: 2 encodings
        Run(model, TaskBatch());
        Assert.Equal(4, hyper.Runs);
        var plain = Run(TinyModel(kind), Stripped());                         // at init: the base without the instruction
        int V = model.Config.VocabSize;
        for (int b = 0; b < 4; b++)
            for (int t = 0, j = 0; t < 8; t++)
            {
                var got = logits.AsSpan((b * 8 + t) * V, V).ToArray();
                if (Mask[b * 8 + t] == 1 && Segs[b * 8 + t] != 1) Assert.Equal(plain.AsSpan((b * 6 + j++) * V, V).ToArray(), got);
                else Assert.All(got, x => Assert.Equal(0f, x));                  // instruction tokens and padding: not predicted
            }
        var disabled = AdapterSwitch.WithAdaptersDisabled(model, () => Run(model, TaskBatch()));
        Assert.Equal(Run(TinyModel(kind), TaskBatch()), disabled);            // disabled: the base on the full rows
    }

    [Fact]
    public void TheTasksInstructionReachesItsExamplesOnly()
    {
        var model = Perturbed("llama-gqa", out _);
        var a = Run(model, TaskBatch());
        int[] other = [.. Ids]; other[9] = 30; other[25] = 30;                // task 2's instruction changes (rows 1 and 3)
        var b = Run(model, TaskBatch(other));
        int V = model.Config.VocabSize, T = 8;
        float Diff(int row) => Enumerable.Range(row * T * V, T * V).Max(i => Math.Abs(a[i] - b[i]));
        Assert.True(Diff(1) > 1e-3f && Diff(3) > 1e-3f, "task 2's examples must follow its instruction");
        Assert.Equal(0f, Diff(0)); Assert.Equal(0f, Diff(2));
    }

    [Theory, InlineData("llama-gqa"), InlineData("qwen2-tied-bias")]
    public void AStepChangesOnlyHintParametersAndSaveLoadReproducesTheLogits(string kind)
    {
        var model = TinyModel(kind);
        HintInjector.Inject(model, Config, 1);
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.ToArray());
        var optimizer = new AdamW(model.Parameters().Where(p => !p.Frozen).ToList(), lr: 1e-2f, weightDecay: 0f);
        for (int step = 0; step < 2; step++)
        {
            using (var tape = Tape.Record()) tape.Backward(model.Forward(TaskBatch()).Loss!);
            optimizer.Step();
            model.ZeroGrad();
        }
        foreach (var (name, p) in model.NamedParameters())
        {
            bool changed = !before.TryGetValue(name, out var was) || !was.AsSpan().SequenceEqual(p.ToArray());
            bool hint = name.Contains("hint_");
            Assert.True(changed == hint, $"{name}: changed={changed}");
        }
        var expected = Run(model, TaskBatch());
        var dir = Directory.CreateTempSubdirectory("hint").FullName;
        HintInjector.Save(model, dir);
        var reloaded = TinyModel(kind);
        Assert.Equal("HINT", PeftRegistry.LoadInto(reloaded, dir));
        Assert.Equal(expected, Run(reloaded, TaskBatch()));
        var wrong = Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(TinyModel(kind == "llama-gqa" ? "qwen2-tied-bias" : "llama-gqa"), dir));
        Assert.Contains("kv", wrong.Message);
        var cfgPath = Path.Combine(dir, "adapter_config.json");                // an adapter of the earlier scale form: refused, named
        var cfg = File.ReadAllText(cfgPath);
        File.WriteAllText(cfgPath, cfg.Replace("\"adapter_form\"", "\"old_form\""));
        Assert.Contains("adapter_form", Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(TinyModel(kind), dir)).Message);
        File.WriteAllText(cfgPath, cfg);
        var merge = Assert.Throws<InvalidDataException>(() => PeftRegistry.MergeAndUnload(model));
        Assert.Contains("cannot be merged", merge.Message);
        var baseDir = Directory.CreateTempSubdirectory("base").FullName;
        LlamaCheckpoint.Save(TinyModel(kind == "llama-gqa" ? "qwen2-tied-bias" : "llama-gqa"), baseDir);
        using var inference = InferenceModel.Load(baseDir);                  // the inference path refuses another model too
        var refused = Assert.Throws<InvalidDataException>(() => PeftRegistry.ApplyTo(inference, dir));
        Assert.Contains("HINT adapter is for 2 layers", refused.Message);
        Assert.Contains("kv", refused.Message);
    }

    [Fact]
    public void BadSettingsAreRefusedNamingThem()
    {
        var e = Assert.Throws<ArgumentException>(() => HintInjector.Inject(TinyModel("llama-gqa"), Config with { EncoderLayers = 3 }, 1));
        Assert.Contains("encoder_layers 3", e.Message);
        e = Assert.Throws<ArgumentException>(() => HintInjector.Inject(TinyModel("llama-gqa"), Config with { TargetModules = ["nope_proj"] }, 1));
        Assert.Contains("nope_proj", e.Message);
        e = Assert.Throws<ArgumentException>(() => HintInjector.Inject(TinyModel("llama-gqa"), Config with { NumVirtualTokens = 0 }, 1));
        Assert.Contains("num_virtual_tokens", e.Message);
    }

    [Fact]
    public void TheRecipeTrainsHintFromItsKeyAndExportsIt()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128", RecipeSetupTests.ShortTemplate,
            "training.method=hint", "data.pack=false", "hint.rank=4", $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}",
            "training.max_steps=3", "training.learning_rate=1e-2", "logging.tensor_board=false"]);
        var recipe = FineTuneRecipe.Setup(config);
        Assert.All(recipe.Trainer.Trainable, t => Assert.Contains("hint_", t.Name));
        var summary = recipe.Train(quiet: true);
        Assert.Equal(3, summary.Steps);
        var hyper = (HintHypernetwork)recipe.Model.Conditioner!;
        Assert.True(hyper.Runs > 0, "the instructions must have been encoded");
        var reloaded = LlamaCheckpoint.Load(modelDir);
        PeftRegistry.LoadInto(reloaded, summary.ExportDir);
        Assert.Equal(Run(recipe.Model, TaskBatch()), Run(reloaded, TaskBatch()));
        var packed = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", RecipeSetupTests.ShortTemplate,
            "training.method=hint", $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}"]);
        Assert.Contains("data.pack", Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(packed)).Message);
    }

    /// <summary>
    /// `itune score`, `itune generate` and `itune eval model` with a HINT adapter pass the prompt's segments (the recorded template's): at init
    /// the hypernetwork gives exactly 0, so two prompts that differ only in their instruction (taken out) score and
    /// generate exactly alike — unlike the base, which reads the instruction in context; with trained gates they differ.
    /// `itune merge` refuses it; `itune serve` serves it alone under its name and answers a chat request as
    /// generation with the training segments does.
    /// </summary>
    [Fact]
    public async Task ScoreGenerateAndServeApplyAHintAdapterAndMergeRefusesIt()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128", RecipeSetupTests.ShortTemplate,
            "training.method=hint", "data.pack=false", "hint.rank=4", $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}",
            "training.max_steps=1", "logging.tensor_board=false"]);
        var format = PromptFormatFile.TryRead(FineTuneRecipe.Setup(config).Train(quiet: true).ExportDir)!;   // the recorded template
        string Adapter(bool trained)
        {
            var model = LlamaCheckpoint.Load(modelDir);
            HintInjector.Inject(model, Config, 1);
            if (trained) foreach (var (_, p) in model.NamedParameters().Where(p => !p.Parameter.Frozen && (p.Name.Contains("gate") || p.Name.Contains("adapter_")))) new Rng(5).Normal(p.Span, 0, 0.5f);
            var dir = Directory.CreateTempSubdirectory(trained ? "hint-trained" : "hint-init").FullName;
            HintInjector.Save(model, dir, modelDir);
            PromptFormatFile.Write(dir, format);
            return dir;
        }
        string init = Adapter(false), trainedDir = Adapter(true);
        var input = Path.Combine(Directory.CreateTempSubdirectory("hint-score").FullName, "in.jsonl");
        File.WriteAllLines(input, [JsonSerializer.Serialize(new { prompt = "Say 3.", response = "3" }), JsonSerializer.Serialize(new { prompt = "Say 7.", response = "3" })]);
        double[] Score(params string[] adapter)
        {
            var (rc, stdout, err) = TestConsole.Run(["score", "--model", modelDir, "--input", input, .. adapter]);
            Assert.True(rc == 0, err);
            return stdout.Trim().Split('\n').Select(l => JsonDocument.Parse(l).RootElement.GetProperty("response_loss").GetDouble()).ToArray();
        }
        var atInit = Score("--adapter", init);
        Assert.Equal(atInit[0], atInit[1]);                                   // the instruction left the sequence
        var plain = Score("--template", "Q: {instruction}{input} A: {output}");
        Assert.NotEqual(plain[0], plain[1]);                                  // the base reads it in context
        var tuned = Score("--adapter", trainedDir);
        Assert.NotEqual(tuned[0], tuned[1]);                                  // the hypernetwork brings it back
        string Generate(string adapter, string prompt)
        {
            var (rc, stdout, err) = TestConsole.Run("generate", "--model", modelDir, "--adapter", adapter, "--prompt", prompt, "--max-new-tokens", "4", "--json");
            Assert.True(rc == 0, err);
            return JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement.GetProperty("generated_ids").ToString();
        }
        Assert.Equal(Generate(init, "Say 3."), Generate(init, "Say 7."));
        Generate(trainedDir, "Say 3.");
        var ids = TestConsole.Run("generate", "--model", modelDir, "--adapter", trainedDir, "--prompt-ids", "1,2,3");
        Assert.Equal(2, ids.Rc);                                              // no segments: the prompt is all instruction
        Assert.Contains("HINT", ids.Err);
        var eval = TestConsole.Run("eval", "model", "--model", modelDir, "--adapter", trainedDir, "--suite", "builtin",
            "--out", Directory.CreateTempSubdirectory("hint-eval").FullName);   // the suite's prompts are instructions: their segments reach HINT
        Assert.True(eval.Rc == 0, eval.Err);
        var merge = TestConsole.Run("merge", "--model", modelDir, "--adapter", trainedDir, "--out", Directory.CreateTempSubdirectory("merged").FullName);
        Assert.Equal(2, merge.Rc);
        Assert.Contains("cannot be merged", merge.Err);

        using var served = ServedModel.Load(modelDir, [("hint", trainedDir)], new ServeLimits());
        Assert.Equal(["hint"], served.ModelNames);
        Assert.True(served.Model.TakesInstructionOut);
        List<InstructTune.Templates.ChatMessage> messages = [new("user", "Say 3.")];
        var (promptIds, segs) = served.ChatPrompt(messages);
        Assert.Contains((byte)InstructionSpans.Instruction, segs!);
        var expected = Generator.Generate(served.Model, [promptIds], new GenerationOptions { MaxNewTokens = 4, StopTokenIds = served.StopIds }, [segs]).Single().GeneratedIds;
        var app = ServeHost.Build(served, new ServeHostOptions { Port = 0, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning });
        await app.StartAsync();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri(ServeHost.BoundUrl(app)), Timeout = TimeSpan.FromMinutes(2) };
            var body = new { model = "hint", messages = messages.Select(m => new { role = m.Role, content = m.Content }), max_tokens = 4, temperature = 0 };
            using var resp = await client.PostAsync("/v1/chat/completions", new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"));
            var json = JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement;
            Assert.True(resp.IsSuccessStatusCode, json.ToString());
            Assert.Equal(served.Tokenizer.Decode(expected.Where(t => !served.StopIds.Contains(t)).ToArray(), skipSpecialTokens: true),
                json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
            var raw = new { model = "hint", prompt = "Say 3.", max_tokens = 2 };   // a completion prompt is all instruction: refused, named
            using var bad = await client.PostAsync("/v1/completions", new StringContent(JsonSerializer.Serialize(raw), System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(400, (int)bad.StatusCode);
            Assert.Contains("HINT", await bad.Content.ReadAsStringAsync());
        }
        finally { await app.StopAsync(); await app.DisposeAsync(); }
        var two = Assert.Throws<ArgumentException>(() => ServedModel.Load(modelDir, [("hint", trainedDir), ("other", init)], new ServeLimits()));
        Assert.Contains("served alone", two.Message);
    }

    // `itune eval run`'s robustness (paraphrases) and multi-turn coherence generate from dataset records and chat
    // histories (InferenceTextGenerator.GenerateRecords, ModelConversation.Reply). Their prompts' segments must reach
    // HINT: at init HINT is the base without the instruction, so two records differing only in their instruction give
    // the same completion (before, these paths passed no segments and HINT refused every prompt as all instruction).
    // The raw format, whose prompt is all instruction, is refused naming what to do.
    [Fact]
    public void EvalRunRecordAndConversationPromptsPassTheirSegmentsToHint()
    {
        var (modelDir, _) = RecipeSetupTests.Workspace();
        var model = LlamaCheckpoint.Load(modelDir);
        HintInjector.Inject(model, Config, 1);
        var dir = Directory.CreateTempSubdirectory("hint-eval-run").FullName;
        HintInjector.Save(model, dir, modelDir);
        using var loaded = LoadedModel.Load(modelDir, dir);
        Assert.True(loaded.Model.TakesInstructionOut);
        var settings = new EvalGenerationSettings { MaxNewTokens = 4 };
        var formatter = PromptFormatter.Create("alpaca", modelDir);
        var generator = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, formatter, settings);
        var outs = generator.GenerateRecords([new InstructionRecord("Say 3.", "", "", "eval"), new InstructionRecord("Write a long poem about rivers.", "", "", "eval")]);
        Assert.Equal(outs[0], outs[1]);
        Assert.Equal(generator.Generate(["Say 3."]), [outs[0]]);            // the same segments as the suite prompts' path

        var conversation = new ModelConversation(loaded, formatter, settings);
        var replies = conversation.Reply([[new("user", "Say 3.")], [new("user", "Write a long poem about rivers.")]]);
        Assert.Equal(replies[0], replies[1]);

        var raw = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, PromptFormatter.Raw, settings);
        var refused = Assert.ThrowsAny<ArgumentException>(() => raw.GenerateRecords([new InstructionRecord("Say 3.", "", "", "eval")]));
        Assert.Contains("HINT", refused.Message);
        Assert.Contains("--template", refused.Message);
    }
}
