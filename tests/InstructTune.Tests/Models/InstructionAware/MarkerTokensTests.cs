using System.Text.Json;
using InstructTune.Checkpoints;
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
    public void LoraIsRefusedNamingTheKey()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(modelDir, data, "model.instruction_aware.marker_tokens=[\"[INST]\", \"[/INST]\"]", "training.method=lora")));
        Assert.Contains("model.instruction_aware.marker_tokens", e.Message);
    }
}
