using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Generation;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Models.InstructionAware;
using InstructTune.Recipes;
using InstructTune.Tests.Checkpoints;
using InstructTune.Tests.Training;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Models.InstructionAware;

/// <summary>model.instruction_aware.marker_tokens: markers as new single tokens (tokenizer.json added tokens), the
/// vocabulary resized with mean rows (checked against an independent mean of the stored tensor), logits over the old
/// vocabulary unchanged, instructions wrapped in training and at inference, and a collision refused naming the key.</summary>
public class MarkerTokensTests
{
    private static readonly string[] Markers = ["[INST]", "[/INST]"];

    [Fact]
    public void MarkersBecomeSingleNewIdsAndTheSavedTokenizerGivesTheSameIds()
    {
        var (modelDir, _) = RecipeSetupTests.Workspace();
        var tok = TokenizerLoader.Load(modelDir);
        Assert.Equal(280, tok.VocabSize);
        Assert.True(tok.Encode("[INST]").Ids.Length > 1);                 // not a token before
        var mv = MarkerTokens.Add(tok, modelDir, Markers, modelVocab: 280);
        Assert.Equal(280, mv.FirstId);
        Assert.Equal(282, mv.VocabSize);
        const string text = "Q: [INST]Say 3.[/INST] A: 3";
        var ids = mv.Tokenizer.Encode(text).Ids;
        Assert.Single(ids, 280);
        Assert.Single(ids, 281);
        Assert.Equal(text, mv.Tokenizer.Decode(ids));
        Assert.DoesNotContain("[INST]", mv.Tokenizer.Decode(ids, skipSpecialTokens: true));   // added as special tokens
        // Text without markers encodes as before.
        Assert.Equal(tok.Encode("Q: Say 3. A: 3").Ids, mv.Tokenizer.Encode("Q: Say 3. A: 3").Ids);

        using var dir = new TempDir();
        mv.Save(dir.Path);
        var reloaded = TokenizerLoader.Load(dir.Path);
        Assert.Equal(ids, reloaded.Encode(text).Ids);
        Assert.Equal(282, reloaded.VocabSize);
        Assert.Equal(tok.EosId, reloaded.EosId);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "tokenizer.json")));
        var added = json.RootElement.GetProperty("added_tokens").EnumerateArray().Last();
        Assert.Equal(281, added.GetProperty("id").GetInt32());
        Assert.Equal("[/INST]", added.GetProperty("content").GetString());
        Assert.True(added.GetProperty("special").GetBoolean());
        Assert.False(added.GetProperty("normalized").GetBoolean());
        using var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "tokenizer_config.json")));
        Assert.Equal("[INST]", cfg.RootElement.GetProperty("added_tokens_decoder").GetProperty("280").GetProperty("content").GetString());
        Assert.Contains("[/INST]", cfg.RootElement.GetProperty("additional_special_tokens").EnumerateArray().Select(e => e.GetString()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NewRowsAreTheMeanRowAndLogitsOverTheOldVocabularyAreUnchanged(bool tied)
    {
        using var dir = new TempDir();
        var c = new LlamaConfig { VocabSize = 40, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2,
            NumKeyValueHeads = 1, MaxPositionEmbeddings = 64, TieWordEmbeddings = tied };
        RandomCheckpoint.Create(c, dir.Path, 7, DType.F32);
        var resized = LlamaCheckpoint.Load(dir.Path, 43);
        Assert.Equal(43, resized.Config.VocabSize);
        // Independent reference: the stored tensors' column means, in double, from the file.
        using (var st = SafetensorsFile.Open(Path.Combine(dir.Path, "model.safetensors")))
            foreach (var name in tied ? ["model.embed_tokens.weight"] : new[] { "model.embed_tokens.weight", "lm_head.weight" })
            {
                var stored = st.ReadF32(name);
                var got = resized.GetParameter(name).ToArray();
                Assert.Equal(stored, got[..stored.Length]);
                for (int d = 0; d < 16; d++)
                {
                    double mean = Enumerable.Range(0, 40).Average(r => (double)stored[r * 16 + d]);
                    for (int r = 40; r < 43; r++) Assert.True(Math.Abs(got[r * 16 + d] - mean) <= 1e-7, $"{name} row {r} col {d}: {got[r * 16 + d]} vs mean {mean}");
                }
            }

        var plain = LlamaCheckpoint.Load(dir.Path);
        int[] ids = [1, 5, 39, 7, 2, 11];
        float[] a, b;
        using (Tape.Record(recordGrad: false))
        {
            a = plain.Forward(new LlamaBatch(new IntTensor(ids, 1, ids.Length))).Logits!.ToArray();
            b = resized.Forward(new LlamaBatch(new IntTensor(ids, 1, ids.Length))).Logits!.ToArray();
        }
        for (int t = 0; t < ids.Length; t++) Assert.Equal(a.AsSpan(t * 40, 40).ToArray(), b.AsSpan(t * 43, 40).ToArray());   // exactly

        // The inference path (saved with vocab_size 43): the same logits, and the KV cache equals no cache.
        using var saved = new TempDir();
        LlamaCheckpoint.Save(resized, saved.Path);
        Assert.Equal(43, LlamaConfig.Load(saved.Path).VocabSize);
        using var loaded = LoadedModel.Load(saved.Path, requireTokenizer: false);
        var inf = loaded.Model.Forward([new SequenceChunk(loaded.Model.CreateCache(ids.Length), ids, AllLogits: true)]);
        for (int i = 0; i < b.Length; i++) Assert.True(Math.Abs(b[i] - inf[i]) <= 1e-5, $"logit {i}: training {b[i]}, inference {inf[i]}");
        int[] prompt = [1, 41, 5, 39, 42, 7];   // with the new ids
        var cached = Generator.Generate(loaded.Model, [prompt], new GenerationOptions { MaxNewTokens = 8 }).Select(r => r.GeneratedIds).ToList();
        var uncached = Generator.Generate(loaded.Model, [prompt], new GenerationOptions { MaxNewTokens = 8, UseCache = false }).Select(r => r.GeneratedIds).ToList();
        Assert.Equal(cached, uncached);
    }

    /// <summary>tools/golden/marker_tokens.py: transformers' mean resizing on a tiny untied Llama, then a batch with both
    /// marker ids: the new rows, logits, loss and the new rows' gradients — full fine-tuning's resized tables and LoRA's
    /// trainable rows (added_tokens.*) over the frozen tables get the same.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ResizeLogitsAndNewRowGradientsMatchPyTorch(bool trainableRows)
    {
        var root = InstructionAwareTests.Load("markers");
        var c = InstructionAwareTests.Golden(root.GetProperty("config")) with { ModelType = "qwen2" };   // config.json keeps q/k/v biases for qwen2
        int V0 = c.VocabSize, k = root.GetProperty("added").GetInt32(), D = c.HiddenSize;
        var model = new LlamaModel(c);
        HashInit.Initialize(model);
        using var dir = new TempDir();
        LlamaCheckpoint.Save(model, dir.Path);
        var resized = LlamaCheckpoint.Load(dir.Path, V0 + k);
        void Near(float[] expected, ReadOnlySpan<float> got, double tol, string what)
        {
            Assert.Equal(expected.Length, got.Length);
            for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"{what}[{i}]: torch {expected[i]}, ours {got[i]}");
        }
        Near(InstructionAwareTests.Floats(root.GetProperty("embed_rows")), resized.GetParameter("model.embed_tokens.weight").ToArray().AsSpan(V0 * D), 1e-6, "embed rows");
        Near(InstructionAwareTests.Floats(root.GetProperty("head_rows")), resized.GetParameter("lm_head.weight").ToArray().AsSpan(V0 * D), 1e-6, "lm_head rows");
        if (trainableRows)
        {
            foreach (var (_, p) in resized.NamedParameters()) p.Frozen = true;
            resized.AttachTokenRows(V0);
        }
        var batch = new LlamaBatch(new IntTensor(InstructionAwareTests.Ints(root.GetProperty("ids")), 2, 9))
            { Labels = new IntTensor(InstructionAwareTests.Ints(root.GetProperty("labels")), 2, 9) };
        using var tape = Tape.Record();
        var o = resized.Forward(batch);
        tape.Backward(o.Loss!);
        Near(InstructionAwareTests.Floats(root.GetProperty("logits")), o.Logits!.ToArray(), 1e-5, "logits");
        Near([(float)root.GetProperty("loss").GetDouble()], [o.Loss!.Item()], 1e-5, "loss");
        var embedGrad = trainableRows ? resized.TokenRows!.Embed.Grad!.ToArray() : resized.GetParameter("model.embed_tokens.weight").Grad!.ToArray()[(V0 * D)..];
        var headGrad = trainableRows ? resized.TokenRows!.Head!.Grad!.ToArray() : resized.GetParameter("lm_head.weight").Grad!.ToArray()[(V0 * D)..];
        Near(InstructionAwareTests.Floats(root.GetProperty("embed_rows_grad")), embedGrad, 1e-5, "d embed rows");
        Near(InstructionAwareTests.Floats(root.GetProperty("head_rows_grad")), headGrad, 1e-5, "d lm_head rows");
        if (trainableRows) Assert.Null(resized.GetParameter("model.embed_tokens.weight").Grad);   // the frozen table gets nothing
    }

    [Fact]
    public void WrappingPutsTheMarkersAroundEveryInstructionSpanAsInstructionText()
    {
        var r = new RenderBuilder().Add("Q: ").Add("Say 3.", Segment.Instruction).Add(" in ").Add("ctx", Segment.Input).Add(" A: ").Add("3", Segment.Response).Build();
        var w = InstructionMarkerText.Wrap(r, "<i>", "</i>");
        Assert.Equal("Q: <i>Say 3.</i> in ctx A: 3", w.Text);
        Assert.Equal("<i>Say 3.</i>", w.TextOf(Segment.Instruction));
        Assert.Equal("ctx", w.TextOf(Segment.Input));
        Assert.Equal("3", w.TextOf(Segment.Response));
    }

    [Fact]
    public void AnOverLongExampleIsCutInsideTheInstructionAndKeepsBothMarkersBeforeTheResponse()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        string Instruction(int i) => string.Concat(Enumerable.Repeat($"Say {i}. ", 12)).TrimEnd();
        File.WriteAllLines(data, Enumerable.Range(0, 20).Select(i => JsonSerializer.Serialize(new { instruction = Instruction(i), input = "", output = $"{i}" })));
        var mv = MarkerTokens.Add(TokenizerLoader.Load(modelDir), modelDir, Markers, modelVocab: 280);
        const int maxLen = 16;
        var recipe = FineTuneRecipe.Setup(Config(modelDir, data, "model.instruction_aware.marker_tokens=[\"[INST]\", \"[/INST]\"]", $"data.max_seq_len={maxLen}"));
        var examples = recipe.Data!.Stages[0].Concat(recipe.Data.Validation).ToList();
        Assert.NotEmpty(examples);
        foreach (var x in examples)
        {
            Assert.True(x.TruncatedTokens > 0, "every example is longer than data.max_seq_len");
            Assert.True(x.Length <= maxLen);
            Assert.Single(x.Ids, 280);
            Assert.Single(x.Ids, 281);
            int open = Array.IndexOf(x.Ids, 280), close = Array.IndexOf(x.Ids, 281);
            Assert.True(close > open + 1, "the closing marker comes after the kept part of the instruction");
            for (int t = open; t <= close; t++) Assert.Equal((byte)Segment.Instruction, x.Segments[t]);
            // Before the opening marker: the template's "Q: ", whole. Between the markers: the instruction's first tokens.
            var prefix = mv.Tokenizer.Decode(x.Ids[..open], skipSpecialTokens: true);
            Assert.Equal("Q: ", prefix);
            var kept = mv.Tokenizer.Decode(x.Ids[(open + 1)..close]);
            // After the closing marker: the rest of the prompt and the whole learned response, as at inference.
            Assert.Equal((byte)Segment.Template, x.Segments[close + 1]);
            var after = mv.Tokenizer.Decode(x.Ids[(close + 1)..], skipSpecialTokens: true);
            Assert.StartsWith(" A: ", after);
            var number = after[4..];
            Assert.StartsWith(kept, Instruction(int.Parse(number)));
            Assert.Equal(mv.Tokenizer.EosId, x.Ids[^1]);
            Assert.All(x.Labels[..(close + 1)], l => Assert.Equal(TokenizedExample.IgnoreIndex, l));
            // The part after the marker is the text's own encoding (the marker is an added token: text after it encodes
            // on its own), and the learned labels are its response tail plus EOS.
            Assert.Equal(mv.Tokenizer.Encode($" A: {number}", addSpecialTokens: false).Ids, x.Ids[(close + 1)..^1]);
            var learned = x.Labels.Where(l => l >= 0).ToArray();
            Assert.Equal(x.Ids[^learned.Length..], learned);
            Assert.Equal(number, mv.Tokenizer.Decode(learned, skipSpecialTokens: true).Trim());
        }
    }

    [Fact]
    public void TruncationNeverLeavesAMarkerUnpairedAndIsUnchangedWithoutMarkers()
    {
        // Two wrapped instructions (ids 90 = open, 91 = close), an input and a response: [BOS, 90, 5, 5, 91, 7, 6, 6, 8, 90, 5, 91, 9, EOS].
        const byte T = (byte)Segment.Template, I = (byte)Segment.Instruction, N = (byte)Segment.Input, R = (byte)Segment.Response;
        int[] ids = [1, 90, 5, 5, 91, 7, 6, 6, 8, 90, 5, 91, 9, 2];
        byte[] segs = [T, I, I, I, I, T, N, N, R, I, I, I, R, R];
        var labels = ids.Select((id, t) => segs[t] == R ? id : TokenizedExample.IgnoreIndex).ToArray();
        var e = new TokenizedExample(ids, labels, segs, 0, -1);
        // 14 → 10: both input tokens go, then instruction tokens from the end; the markers stay and close each kept part.
        var cut = ExampleTokenizer.Truncate(e, 10, (90, 91));
        Assert.Equal([1, 90, 5, 91, 7, 8, 90, 91, 9, 2], cut.Ids);
        Assert.Equal(4, cut.TruncatedTokens);
        // Without markers: the old rule (the closing marker 91 of the second instruction is the first instruction token to go).
        Assert.Equal([1, 90, 5, 5, 91, 7, 8, 90, 9, 2], ExampleTokenizer.Truncate(e, 10).Ids);
        // 14 → 6: every instruction token and the input go (9 left), then the tail cut falls between the second pair's
        // markers: its opening marker goes too, so the result is one token shorter and holds one whole pair.
        var tail = ExampleTokenizer.Truncate(e, 6, (90, 91));
        Assert.Equal([1, 90, 91, 7, 8], tail.Ids);
        Assert.Equal(9, tail.TruncatedTokens);
        Assert.Equal([T, I, I, T, R], tail.Segments);
        Assert.Equal([1, 90, 91, 7, 8, 90, 91], ExampleTokenizer.Truncate(e, 7, (90, 91)).Ids);   // a cut after a pair keeps it
        Assert.Equal([1, 90, 5, 7, 8, 9, 2], ExampleTokenizer.Truncate(e, 7).Ids);   // without markers: as before (90 left open)
    }

    private static TrainConfig Config(string modelDir, string data, params string[] extra) =>
        ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128", RecipeSetupTests.ShortTemplate,
            "training.method=full", $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}", "training.max_steps=3",
            "training.learning_rate=1e-2", "logging.tensor_board=false", .. extra]);

    [Fact]
    public void ARecipeWithMarkersTrainsExportsAndTheInferencePathFormatsAndReproducesIt()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var recipe = FineTuneRecipe.Setup(Config(modelDir, data, "model.instruction_aware.marker_tokens=[\"[INST]\", \"[/INST]\"]"));
        Assert.Equal(282, recipe.Model.Config.VocabSize);
        var example = recipe.Data!.Stages[0][0];
        int open = Array.IndexOf(example.Ids, 280), close = Array.IndexOf(example.Ids, 281);
        Assert.True(open >= 0 && close > open, "the training example holds both markers in order");
        Assert.Equal((byte)Segment.Instruction, example.Segments[open]);
        Assert.Equal((byte)Segment.Instruction, example.Segments[close]);
        var before = recipe.Model.GetParameter("model.embed_tokens.weight").ToArray().AsSpan(280 * 16, 32).ToArray();
        var summary = recipe.Train(quiet: true);
        var after = recipe.Model.GetParameter("model.embed_tokens.weight").ToArray().AsSpan(280 * 16, 32).ToArray();
        Assert.NotEqual(before, after);                                         // the marker rows trained

        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(summary.ExportDir, "instructtune.json"))))
            Assert.Equal(Markers, json.RootElement.GetProperty("prompt_format").GetProperty("instruction_markers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(282, LlamaConfig.Load(summary.ExportDir).VocabSize);

        using var loaded = LoadedModel.Load(summary.ExportDir);
        var format = loaded.PromptFormat(null, fallback: "raw");
        var prompt = format.Format("Say 3.");
        Assert.Equal("Q: [INST]Say 3.[/INST] A: ", prompt);
        var ids = loaded.Tokenizer.Encode(prompt, format.AddSpecialTokens).Ids;
        Assert.Contains(280, ids);
        Assert.Contains(281, ids);
        // The prompt the inference path builds is the training examples' prompt (same ids up to the response).
        int promptLen = ids.Length;
        var examples = recipe.Data!.Stages[0].Concat(recipe.Data.Validation);
        Assert.Contains(examples, x => x.Ids.AsSpan().StartsWith(ids.AsSpan(0, promptLen - 1)) && x.Segments[Array.IndexOf(ids, 280)] == (byte)Segment.Instruction);
        var segs = format.PromptSegments(new InstructTune.Data.Records.InstructionRecord("Say 3.", "", "", "eval"), loaded.Tokenizer, ids);
        Assert.NotNull(segs);
        Assert.Equal((byte)Segment.Instruction, segs![Array.IndexOf(ids, 280)]);

        float[] expected;
        using (Tape.Record(recordGrad: false)) expected = recipe.Model.Forward(new LlamaBatch(new IntTensor(ids, 1, promptLen))).Logits!.ToArray();
        var got = loaded.Model.Forward([new SequenceChunk(loaded.Model.CreateCache(promptLen), ids, AllLogits: true)]);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-4, $"logit {i}: trained {expected[i]}, loaded {got[i]}");
    }

    [Theory]
    [InlineData("[\"S\", \"[/INST]\"]", "collides with an existing token")]
    [InlineData("[\"[INST]\"]", "two distinct")]
    [InlineData("[\"[INST]\", \"[INST]\"]", "two distinct")]
    public void ACollidingOrMalformedMarkerIsRefusedNamingTheKey(string value, string why)
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(modelDir, data, $"model.instruction_aware.marker_tokens={value}")));
        Assert.Contains("model.instruction_aware.marker_tokens", e.Message);
        Assert.Contains(why, e.Message);
        Assert.Equal("model.instruction_aware.marker_tokens", e.Key);
    }

    [Fact]
    public void OnLlama2AMarkerThatEncodesToOneExistingIdOrIsATokenIsRefusedAndANewOneIsAdded()
    {
        var dir = TestPaths.SharedTestData("tokenizers", "llama2");
        var tok = TokenizerLoader.Load(dir);
        // A word that is not a vocabulary entry by its own name, but whose encoding is the one id of "▁word".
        var single = Enumerable.Range(3, 32000 - 3).Select(id => tok.IdToToken(id)!)
            .Where(c => c.Length > 3 && c[0] == '\u2581' && c.IndexOf('\u2581', 1) < 0 && char.IsLetter(c[1])).Select(c => c[1..])
            .First(w => tok.TokenToId(w) == null && tok.Encode(w).Ids.Length == 1);
        var e = Assert.Throws<ConfigException>(() => MarkerTokens.Add(tok, dir, [single, "[/INST]"], 32000));
        Assert.Contains("encodes to the single id", e.Message);
        Assert.Contains("model.instruction_aware.marker_tokens", e.Message);
        e = Assert.Throws<ConfigException>(() => MarkerTokens.Add(tok, dir, ["<s>", "[/INST]"], 32000));
        Assert.Contains("collides with an existing token (id 1)", e.Message);
        // llama2's own [INST] is text (several pieces), so it can become one new token.
        var mv = MarkerTokens.Add(tok, dir, Markers, 32000);
        Assert.Equal([1, 32000], mv.Tokenizer.Encode("[INST]", addSpecialTokens: true).Ids);
        Assert.Equal(tok.Encode("Say hi.").Ids, mv.Tokenizer.Encode("Say hi.").Ids);
    }

    [Fact]
    public void ItuneTrainRefusesACollidingMarkerWithExitCode2NamingTheKey()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        var (rc, _, err) = CliCapture.Run("train", $"model.path={modelDir}", $"data.path={data}", $"checkpoint.output_dir={run}", "training.method=full",
            RecipeSetupTests.ShortTemplate, "data.max_seq_len=128", "training.max_steps=1", "logging.tensor_board=false",
            "model.instruction_aware.marker_tokens=[\"S\", \"[/INST]\"]");
        Assert.Equal(2, rc);
        Assert.Contains("model.instruction_aware.marker_tokens", err);
        Assert.Contains("collides", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void UnderQloraTheMarkerRowsTrainToo()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var recipe = FineTuneRecipe.Setup(Config(modelDir, data, "model.instruction_aware.marker_tokens=[\"[INST]\", \"[/INST]\"]", "training.method=qlora",
            "training.max_steps=2", "lora.target_modules=[q_proj]"));
        Assert.Contains("added_tokens.embed_tokens", recipe.Trainer.Trainable.Select(t => t.Name));
        var start = recipe.Model.TokenRows!.Embed.ToArray();
        var summary = recipe.Train(quiet: true);
        Assert.NotEqual(start, recipe.Model.TokenRows!.Embed.ToArray());
        Assert.True(File.Exists(Path.Combine(summary.ExportDir, TrainableTokenRows.FileName)));
    }

    [Fact]
    public void Ia3IsRefusedNamingTheKey()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(modelDir, data, "model.instruction_aware.marker_tokens=[\"[INST]\", \"[/INST]\"]", "training.method=ia3")));
        Assert.Contains("model.instruction_aware.marker_tokens", e.Message);
    }

    [Fact]
    public void UnderLoraOnlyTheMarkerRowsTrainAndAdapterLoadAndMergeReproduceTheTrainedLogits()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var recipe = FineTuneRecipe.Setup(Config(modelDir, data, "model.instruction_aware.marker_tokens=[\"[INST]\", \"[/INST]\"]", "training.method=lora",
            "training.learning_rate=5e-2"));
        var names = recipe.Trainer.Trainable.Select(t => t.Name).ToList();
        Assert.Contains("added_tokens.embed_tokens", names);
        Assert.Contains("added_tokens.lm_head", names);                       // the tiny model is untied
        Assert.DoesNotContain("model.embed_tokens.weight", names);
        int[] ids = [5, 280, 17, 42, 281, 8, 99];
        float[] Logits(LlamaModel m) { using (Tape.Record(recordGrad: false)) return m.Forward(new LlamaBatch(new IntTensor(ids, 1, ids.Length))).Logits!.ToArray(); }
        // At the start the trainable rows are the resized model's mean rows: the same logits, exactly.
        Assert.Equal(Logits(LlamaCheckpoint.Load(modelDir, 282)), Logits(recipe.Model));
        var start = recipe.Model.TokenRows!.Embed.ToArray();
        var summary = recipe.Train(quiet: true);
        Assert.NotEqual(start, recipe.Model.TokenRows!.Embed.ToArray());          // the marker rows trained
        using (var st = SafetensorsFile.Open(Path.Combine(modelDir, "model.safetensors")))   // the base rows did not
            Assert.Equal(st.ReadF32("model.embed_tokens.weight"), recipe.Model.GetParameter("model.embed_tokens.weight").ToArray()[..(280 * 16)]);
        Assert.True(File.Exists(Path.Combine(summary.ExportDir, TrainableTokenRows.FileName)));
        var expected = Logits(recipe.Model);

        using (var loaded = LoadedModel.Load(modelDir, summary.ExportDir))
        {
            Assert.Equal(282, loaded.Model.Config.VocabSize);
            var format = loaded.PromptFormat(null, fallback: "raw");
            var prompt = format.Format("Say 3.");
            Assert.Equal("Q: [INST]Say 3.[/INST] A: ", prompt);
            Assert.Contains(281, loaded.Tokenizer.Encode(prompt, format.AddSpecialTokens).Ids);
            var got = loaded.Model.Forward([new SequenceChunk(loaded.Model.CreateCache(ids.Length), ids, AllLogits: true)]);
            for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-4, $"logit {i}: trained {expected[i]}, adapter {got[i]}");
            var cached = Generator.Generate(loaded.Model, [ids], new GenerationOptions { MaxNewTokens = 8 }).Select(r => r.GeneratedIds).ToList();
            var uncached = Generator.Generate(loaded.Model, [ids], new GenerationOptions { MaxNewTokens = 8, UseCache = false }).Select(r => r.GeneratedIds).ToList();
            Assert.Equal(cached, uncached);
        }

        var merged = Path.Combine(summary.RunDir, "merged");
        var (rc, _, err) = CliCapture.Run("merge", "--model", modelDir, "--adapter", summary.ExportDir, "--out", merged);
        Assert.True(rc == 0, err);
        Assert.Equal(282, LlamaConfig.Load(merged).VocabSize);
        using (var m = LoadedModel.Load(merged))
        {
            Assert.Equal(280, m.Tokenizer.Encode("[INST]").Ids.Single());
            Assert.Equal("Q: [INST]Say 3.[/INST] A: ", m.PromptFormat(null, fallback: "raw").Format("Say 3."));
            var got = m.Model.Forward([new SequenceChunk(m.Model.CreateCache(ids.Length), ids, AllLogits: true)]);
            for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-4, $"logit {i}: trained {expected[i]}, merged {got[i]}");
        }
    }
}
