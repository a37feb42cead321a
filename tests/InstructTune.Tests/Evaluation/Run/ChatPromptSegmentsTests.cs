using System.Text.Json;
using InstructTune.Cli.Serve;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Engine.Tensors;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Generation;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Models.InstructionAware;
using InstructTune.Serving;
using InstructTune.Tests.Checkpoints;
using InstructTune.Tokenizers;
using Microsoft.AspNetCore.Builder;
using ChatMessage = InstructTune.Templates.ChatMessage;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// Chat-template prompts, <c>itune serve</c> and <c>itune score</c> hand an instruction-aware model the segments training
/// gives the same tokens. References come from the training side only (<see cref="PromptFormat.Resolve"/> +
/// <see cref="ExampleTokenizer"/> over the full conversation), on the real chat templates of Llama-2, Llama-3, Phi-3 and
/// Qwen2.5; a served chat request and a score line give the logits / greedy tokens of the model fed those training
/// segments, which differ from what the model gives without them.
/// </summary>
public class ChatPromptSegmentsTests
{
    private static readonly InstructionRecord WithInput = new("Translate the sentence into French.", "The cat sleeps on the warm mat.", "Le chat dort sur le tapis chaud.", "mt");
    private static readonly InstructionRecord NoInput = new("Name three primary colours.", "", "Red, yellow and blue.", "qa");
    private static readonly InstructionRecord MultiTurn = new("", "", "", "chat")
    {
        Messages =
        [
            new ChatMessage("system", "You are a terse assistant."), new ChatMessage("user", "What is two plus two?"),
            new ChatMessage("assistant", "Four."), new ChatMessage("user", "And times three?"), new ChatMessage("assistant", "Twelve."),
        ],
    };

    /// <summary>The training example of a record under the tokenizer folder's chat template, as `itune train` tokenizes it.</summary>
    private static TokenizedExample Training(ITokenizer tok, string dir, InstructionRecord record)
    {
        var format = PromptFormat.Resolve("chat", dir);
        return new ExampleTokenizer(tok, format, format.Mask(0)).Tokenize(format.Render(record), 0);
    }

    // The prompt's segments equal training's over the ids both share (the last prompt token may merge with the response).
    private static void AssertTrainingSegments(TokenizedExample train, int[] ids, byte[] segs, string what)
    {
        Assert.Equal(ids.Length, segs.Length);
        int common = 0;
        while (common < ids.Length && common < train.Ids.Length && ids[common] == train.Ids[common]) common++;
        Assert.True(common >= ids.Length - 1, $"{what}: prompt and training ids share only {common} of {ids.Length}");
        Assert.Equal(train.Segments.AsSpan(0, common).ToArray(), segs.AsSpan(0, common).ToArray());
    }

    public static TheoryData<string> Tokenizers() => new() { "llama2", "llama3", "phi3-mini", "qwen2.5" };

    [Theory, MemberData(nameof(Tokenizers))]
    public void ChatTemplatePromptSegmentsEqualTrainingSegments(string name)
    {
        var dir = TestPaths.SharedTestData("tokenizers", name);
        var tok = TokenizerLoader.Load(dir);
        var formatter = PromptFormatter.Create("chat", dir);
        foreach (var record in new[] { WithInput, NoInput, MultiTurn })
        {
            var ids = tok.Encode(formatter.Format(record), formatter.AddSpecialTokens).Ids;
            var segs = formatter.PromptSegments(record, tok, ids);
            Assert.NotNull(segs);
            AssertTrainingSegments(Training(tok, dir, record), ids, segs!, $"{name}/{record.Task}");
            // Not trivially all one value: template markup, instruction, input (single turn with input) and the earlier
            // assistant turn (multi-turn, a learned response in training) are all there.
            Assert.Contains((byte)Segment.Template, segs!);
            Assert.Contains((byte)Segment.Instruction, segs!);
            Assert.Equal(record == WithInput, segs!.Contains((byte)Segment.Input));
            Assert.Equal(record == MultiTurn, segs!.Contains((byte)Segment.Response));
            // The conversation path of serve gives the same as the record path of eval.
            if (record.Messages is { } m)
                Assert.Equal(segs, formatter.ConversationSegments(m.Take(m.Count - 1).ToList(), tok, ids));
        }
    }

    private static readonly Lazy<string> AwareModel = new(() =>
    {
        // A tiny instruction-aware model over Llama-2's 32000-token vocabulary, with perturbed segment embeddings and gates.
        var dir = Directory.CreateTempSubdirectory("ia-chat").FullName;
        foreach (var f in new[] { "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(TestPaths.SharedTestData("tokenizers", "llama2", f), Path.Combine(dir, f));
        var m = new LlamaModel(new LlamaConfig
        {
            VocabSize = 32000, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, RmsNormEps = 1e-5, MaxPositionEmbeddings = 512, BosTokenId = 1, EosTokenIds = [2],
        });
        m.InitializeWeights(3, 0.3f);
        var ia = m.AttachInstructionAware(new InstructionAwareOptions { SegmentEmbeddings = true, GateLayers = [0, 1] });
        var rng = new Rng(9);
        foreach (var (_, p) in ia.NamedParameters()) rng.Uniform(p.Span, -1f, 1f);
        LlamaCheckpoint.Save(m, dir);
        return dir;
    });

    [Fact]
    public async Task ServedChatRequestGetsTrainingSegmentsAndGeneratesAsWithThem()
    {
        string dir = AwareModel.Value;
        using var served = ServedModel.Load(dir, [], new ServeLimits(), name: "aware");
        Assert.True(served.Model.ReadsSegments);
        var conversation = MultiTurn.Messages!.Take(4).ToList();
        var (ids, segs) = served.ChatPrompt(conversation);
        Assert.NotNull(segs);
        AssertTrainingSegments(Training(served.Tokenizer, dir, MultiTurn), ids, segs!, "serve");

        var options = new GenerationOptions { MaxNewTokens = 8, StopTokenIds = served.StopIds };
        var withSegs = Generator.Generate(served.Model, [ids], options, [segs]).Single().GeneratedIds;
        var without = Generator.Generate(served.Model, [ids], options, [null]).Single().GeneratedIds;
        Assert.NotEqual(withSegs, without);   // the segments matter to this model

        var app = ServeHost.Build(served, new ServeHostOptions { Port = 0, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning });
        await app.StartAsync();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri(ServeHost.BoundUrl(app)), Timeout = TimeSpan.FromMinutes(2) };
            var body = new { model = "aware", messages = conversation.Select(c => new { role = c.Role, content = c.Content }), max_tokens = 8, temperature = 0 };
            using var resp = await client.PostAsync("/v1/chat/completions", new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"));
            var json = JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement;
            Assert.True(resp.IsSuccessStatusCode, json.ToString());
            var text = json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
            Assert.Equal(served.Tokenizer.Decode(withSegs.Where(t => !served.StopIds.Contains(t)).ToArray(), skipSpecialTokens: true), text);
            Assert.Equal(ids.Length, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        }
        finally { await app.StopAsync(); await app.DisposeAsync(); }
    }

    [Fact]
    public void ScoreOfAPromptResponseLineUsesTrainingSegments()
    {
        string dir = AwareModel.Value;
        using var tmp = new TempDir();
        var input = Path.Combine(tmp.Path, "in.jsonl");
        File.WriteAllText(input, JsonSerializer.Serialize(new { prompt = WithInput.Instruction + "\n\n" + WithInput.Input, response = " Le chat dort" }) + "\n");
        var (rc, stdout, err) = TestConsole.Run("score", "--model", dir, "--input", input, "--template", "chat");
        Assert.True(rc == 0, err);
        var line = JsonDocument.Parse(stdout.Trim()).RootElement;
        var ids = line.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var got = line.GetProperty("next_token_logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray();

        // Reference: training's tokens and segments of the same user message (no input split: the line's prompt is one
        // text) with that response, cut to the scored ids.
        using var loaded = LoadedModel.Load(dir);
        var train = Training(loaded.Tokenizer!, dir, new InstructionRecord(WithInput.Instruction + "\n\n" + WithInput.Input, "", "Le chat dort", "score"));
        Assert.Equal(train.Ids[..ids.Length], ids);
        var segs = train.Segments[..ids.Length];
        Assert.Contains((byte)Segment.Response, segs);
        Assert.Contains((byte)Segment.Instruction, segs);
        var want = Scorer.Score(loaded.Model, [ids], segments: [segs])[0].NextTokenLogprobs;
        for (int t = 0; t < want.Length; t++) Assert.True(Math.Abs(want[t] - got[t]) <= 1e-5, $"logprob {t}: training segments {want[t]}, score {got[t]}");
        var plain = Scorer.Score(loaded.Model, [ids])[0].NextTokenLogprobs;
        Assert.True(plain.Zip(got).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "without segments the model scores differently");
    }

    [Fact]
    public void EvalRunScoresTheReferenceWithTrainingSegments()
    {
        string dir = AwareModel.Value;
        using var tmp = new TempDir();
        var data = Path.Combine(tmp.Path, "one.jsonl");
        File.WriteAllText(data, JsonSerializer.Serialize(new { instruction = WithInput.Instruction, input = WithInput.Input, output = WithInput.Output }) + "\n");
        var outDir = Path.Combine(tmp.Path, "out");
        InstructTune.Evaluation.Run.EvalRunRecipe.Run(new InstructTune.Evaluation.Run.EvalRunRequest(data, outDir)
        {
            Format = "alpaca", ModelDir = dir, Template = "chat",
            Generation = new EvalGenerationSettings { MaxNewTokens = 2 },
        });
        var line = JsonDocument.Parse(File.ReadLines(Path.Combine(outDir, "predictions.jsonl")).First()).RootElement;
        double got = line.GetProperty("metrics").GetProperty("ref_logprob").GetDouble();

        // Reference: the prompt + reference ids scored with the segments `itune score` gives a {prompt, response} line
        // (PromptResponseSegments, checked against training's in ScoreOfAPromptResponseLineUsesTrainingSegments).
        using var loaded = LoadedModel.Load(dir);
        var format = loaded.PromptFormat("chat");
        var scorer = new InstructTune.Evaluation.Run.ContinuationScorer(loaded.Model, loaded.Tokenizer, format.AddSpecialTokens);
        var (ids, start) = scorer.Encode(line.GetProperty("prompt").GetString()!, WithInput.Output);
        var segs = format.PromptResponseSegments(WithInput, WithInput.Output, loaded.Tokenizer, ids);
        Assert.NotNull(segs);
        Assert.Contains((byte)Segment.Instruction, segs!);
        Assert.Contains((byte)Segment.Response, segs!);
        var lp = Scorer.Score(loaded.Model, [ids], segments: [segs])[0].NextTokenLogprobs;
        double want = Enumerable.Range(start - 1, lp.Length - start + 1).Sum(t => (double)lp[t]);
        Assert.True(Math.Abs(want - got) <= 1e-4, $"training segments {want}, eval run {got}");
        var plain = Scorer.Score(loaded.Model, [ids])[0].NextTokenLogprobs;
        Assert.True(Math.Abs(Enumerable.Range(start - 1, lp.Length - start + 1).Sum(t => (double)plain[t]) - got) > 1e-3, "without segments the model scores differently");
    }
}
