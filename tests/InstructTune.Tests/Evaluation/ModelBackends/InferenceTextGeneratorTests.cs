using InstructTune.Evaluation.ModelBackends;
using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Tokenizers;

namespace InstructTune.Tests.Evaluation.ModelBackends;

/// <summary>
/// The evaluation generator against an independent path: the prompt text written out by hand, encoded with the
/// tokenizer, one prompt at a time through <see cref="Generator.Generate"/> without the KV cache, decoded.
/// </summary>
public class InferenceTextGeneratorTests
{
    private static readonly string[] Prompts =
    [
        "What is the capital of France?",
        "Add 4 and 5, then multiply the result by 2, and finally state the answer.",
        "Hi",
    ];

    private static List<string> Reference(InferenceModel model, ITokenizer tok, IEnumerable<string> promptTexts, int maxNew) =>
        promptTexts.Select(text =>
        {
            var ids = tok.Encode(text, addSpecialTokens: true).Ids;
            var r = Generator.Generate(model, [ids], new GenerationOptions { MaxNewTokens = maxNew, StopTokenIds = [1], UseCache = false })[0];
            return tok.Decode(r.GeneratedIds, skipSpecialTokens: true);
        }).ToList();

    [Fact]
    public void RawPromptsMatchGeneratorCalledDirectly()
    {
        using var loaded = LoadedModel.Load(TinyEvalModel.Path);
        var gen = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, PromptFormatter.Raw,
            new EvalGenerationSettings { MaxNewTokens = 12, BatchSize = 2 });
        var outputs = gen.Generate(Prompts);
        Assert.Equal(Reference(loaded.Model, loaded.Tokenizer, Prompts, 12), outputs);
        Assert.Contains(outputs, o => o.Length > 0);
        Assert.Equal(3, gen.Prompts);
        Assert.Equal(0, gen.TruncatedPrompts);
    }

    [Fact]
    public void AlpacaTemplateGivesTheHandWrittenAlpacaPrompt()
    {
        using var loaded = LoadedModel.Load(TinyEvalModel.Path);
        var formatter = PromptFormatter.Create("alpaca", TinyEvalModel.Path);
        var gen = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, formatter, new EvalGenerationSettings { MaxNewTokens = 8 });
        // The Stanford Alpaca no-input prompt, as in its train.py.
        var texts = Prompts.Select(p => "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
                                        + $"### Instruction:\n{p}\n\n### Response:\n");
        Assert.Equal(Reference(loaded.Model, loaded.Tokenizer, texts, 8), gen.Generate(Prompts));
    }

    [Fact]
    public void ChatmlTemplateEndsWithTheAssistantHeader()
    {
        var formatter = PromptFormatter.Create("chatml", TinyEvalModel.Path);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", formatter.Format("Hi"));
    }

    [Fact]
    public void StopStringCutsTheCompletionWhereTheUnstoppedOneHasIt()
    {
        using var loaded = LoadedModel.Load(TinyEvalModel.Path);
        var free = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, PromptFormatter.Raw, new EvalGenerationSettings { MaxNewTokens = 16 })
            .Generate([Prompts[0]])[0];
        Assert.True(free.Length >= 6, $"need a longer completion to pick a stop string from: \"{free}\"");
        // A stop string taken from the middle of the greedy completion: greedy decoding is the same up to it.
        string stop = free.Substring(free.Length / 2, 2);
        var stopped = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, PromptFormatter.Raw,
            new EvalGenerationSettings { MaxNewTokens = 16, StopStrings = [stop] }).Generate([Prompts[0]])[0];
        Assert.Equal(free[..free.IndexOf(stop, StringComparison.Ordinal)], stopped);
    }

    [Theory]
    [InlineData("abc END def", "abc ")]
    [InlineData("abc ### x END", "abc ")]
    [InlineData("no stop here", "no stop here")]
    [InlineData("END", "")]
    public void CutAtStopKeepsTextBeforeTheEarliestStop(string text, string expected) =>
        Assert.Equal(expected, InferenceTextGenerator.CutAtStop(text, ["END", "###", ""]));

    [Fact]
    public void LongPromptsKeepTheirLastTokensAndStillGenerate()
    {
        using var loaded = LoadedModel.Load(TinyEvalModel.Path);
        var gen = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, PromptFormatter.Raw, new EvalGenerationSettings { MaxNewTokens = 6 });
        string longPrompt = string.Concat(Enumerable.Repeat("First boil the water, then add the pasta. ", 60));
        var ids = gen.PromptIds(longPrompt);
        var full = loaded.Tokenizer.Encode(longPrompt, addSpecialTokens: true).Ids;
        Assert.Equal(256 - 6, ids.Length);
        Assert.Equal(full[^ids.Length..], ids);
        Assert.Single(gen.Generate([longPrompt]));
        Assert.Equal(2, gen.TruncatedPrompts); // PromptIds above, then Generate
    }

    [Fact]
    public void AdapterChangesOutputsExactlyAsApplyingItByHand()
    {
        var adapterDir = TinyEvalModel.WriteAdapter("model.layers.0.self_attn.q_proj", 32, 32, seed: 3);
        var adapterDown = TinyEvalModel.WriteAdapter("model.layers.1.mlp.down_proj", 64, 32, seed: 4);
        foreach (var dir in new[] { adapterDir, adapterDown })
        {
            using var loaded = LoadedModel.Load(TinyEvalModel.Path, dir);
            var outputs = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, PromptFormatter.Raw,
                new EvalGenerationSettings { MaxNewTokens = 10 }).Generate(Prompts);
            using var byHand = InferenceModel.Load(TinyEvalModel.Path);
            byHand.ApplyAdapter(LoraAdapterFile.Load(dir));
            Assert.Equal(Reference(byHand, loaded.Tokenizer, Prompts, 10), outputs);
        }
    }
}
