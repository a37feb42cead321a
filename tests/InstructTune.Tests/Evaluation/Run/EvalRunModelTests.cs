using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Evaluation.Run;
using InstructTune.Generation;
using InstructTune.Tests.Evaluation.ModelBackends;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// `itune eval run --model` on a tiny random checkpoint: batched greedy decoding gives the same tokens as one prompt
/// at a time without the KV cache; the reference perplexity equals what `itune score` gives for the same token ids;
/// a run cut short (torn last line) resumes to the same predictions; log-likelihood choice is the argmax of the
/// option sums.
/// </summary>
[Collection("Console")]
public sealed class EvalRunModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-evalrun-model").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly (string Instruction, string Input, string Output)[] Rows =
    [
        ("What is the capital of France?", "", "The capital is Paris."),
        ("List 3 primary colours.", "as a bullet list", "red, blue, yellow"),
        ("If it is raining, what should I take?", "", "an umbrella"),
        ("Write the word hello in all capital letters.", "hello", "HELLO"),
        ("Add 4 and 5, then multiply the result by 2.", "", "The answer is 18.\n#### 18"),
        ("First boil the water, then add the pasta.", "", "finally drain it"),
        ("Hi", "", "Hello."),
        ("Name a colour.", "", "blue"),
        ("What comes after the pasta?", "", "drain it"),
        ("Say yes.", "", "yes"),
        ("Capital of France?", "", "Paris"),
    ];

    private string WriteData()
    {
        var path = Path.Combine(_dir, "heldout.jsonl");
        File.WriteAllLines(path, Rows.Select(r => JsonSerializer.Serialize(new { instruction = r.Instruction, input = r.Input, output = r.Output })));
        return path;
    }

    private static List<JsonObject> Lines(string outDir) =>
        File.ReadLines(Path.Combine(outDir, EvalRunRecipe.PredictionsFile)).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();

    private (int Rc, string Err) Run(string data, string outDir, params string[] extra)
    {
        var (rc, _, err) = Evaluation.CliCapture.Run(["eval", "run", "--model", TinyEvalModel.Path, "--data", data, "--format", "alpaca",
            "--out", outDir, "--max-new-tokens", "10", "--template", "alpaca", .. extra]);
        return (rc, err);
    }

    [Fact]
    public void BatchedGreedyEqualsOneAtATimeWithoutCacheAndReferencePerplexityEqualsScore()
    {
        var data = WriteData();
        var batched = Path.Combine(_dir, "b8");
        var (rc, err) = Run(data, batched, "--batch-size", "8");
        Assert.True(rc == 0, err);
        Assert.Contains("examples", err); // progress lines
        var lines = Lines(batched);
        Assert.Equal(Rows.Length, lines.Count);

        using var loaded = LoadedModel.Load(TinyEvalModel.Path);
        var formatter = PromptFormatter.Create("alpaca", TinyEvalModel.Path);
        var tok = loaded.Tokenizer;
        var scoreInput = new List<string>();
        var starts = new List<int>();
        for (int i = 0; i < Rows.Length; i++)
        {
            var record = new global::InstructTune.Data.Records.InstructionRecord(Rows[i].Instruction, Rows[i].Input, Rows[i].Output, "heldout");
            var prompt = formatter.Format(record);
            Assert.Equal(prompt, lines[i]["prompt"]!.GetValue<string>());
            // Independent path: one prompt, no KV cache, greedy.
            var ids = tok.Encode(prompt, addSpecialTokens: true).Ids;
            var r = Generator.Generate(loaded.Model, [ids], new GenerationOptions { MaxNewTokens = 10, StopTokenIds = [1], UseCache = false })[0];
            Assert.Equal(tok.Decode(r.GeneratedIds, skipSpecialTokens: true).Trim(), lines[i]["prediction"]!.GetValue<string>());
            Assert.Equal(r.GeneratedIds.Length, lines[i]["tokens"]!["generated"]!.GetValue<int>());
            // The reference's tokens: prompt + reference encoded once, after the prompt's own encoding (the prompt
            // ends in "\n" which moves to the reference, as lm-evaluation-harness does).
            var context = prompt.TrimEnd();
            var whole = tok.Encode(prompt + Rows[i].Output, addSpecialTokens: true).Ids;
            starts.Add(tok.Encode(context, addSpecialTokens: true).Ids.Length);
            scoreInput.Add(JsonSerializer.Serialize(new { ids = whole }));
        }
        var scoreIn = Path.Combine(_dir, "score.jsonl");
        var scoreOut = Path.Combine(_dir, "scored.jsonl");
        File.WriteAllLines(scoreIn, scoreInput);
        var (src, _, serr) = Evaluation.CliCapture.Run("score", "--model", TinyEvalModel.Path, "--input", scoreIn, "--output", scoreOut);
        Assert.True(src == 0, serr);
        var scored = File.ReadLines(scoreOut).Select(l => JsonNode.Parse(l)!).ToList();
        double sumAll = 0;
        long tokensAll = 0;
        for (int i = 0; i < Rows.Length; i++)
        {
            var lp = scored[i]["next_token_logprobs"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            var mine = lp.Skip(starts[i] - 1).ToArray();
            var m = lines[i]["metrics"]!;
            Assert.Equal(mine.Length, m["ref_tokens"]!.GetValue<int>());
            Assert.Equal(Math.Exp(-mine.Average()), m["ref_ppl"]!.GetValue<double>(), 1e-4 * Math.Exp(-mine.Average()));
            sumAll += mine.Sum();
            tokensAll += mine.Length;
        }
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(batched, "results.json")));
        var ppl = results.RootElement.GetProperty("reference_perplexity");
        Assert.Equal(Math.Exp(-sumAll / tokensAll), ppl.GetProperty("ref_ppl_corpus").GetDouble(), 1e-4 * Math.Exp(-sumAll / tokensAll));
        Assert.Equal(tokensAll, ppl.GetProperty("tokens").GetInt64());

        // Batch size 1: the same lines apart from timing.
        var single = Path.Combine(_dir, "b1");
        (rc, err) = Run(data, single, "--batch-size", "1");
        Assert.True(rc == 0, err);
        var one = Lines(single);
        for (int i = 0; i < Rows.Length; i++)
        {
            Assert.Equal(lines[i]["prediction"]!.GetValue<string>(), one[i]["prediction"]!.GetValue<string>());
            Assert.Equal(lines[i]["metrics"]!.ToJsonString(), one[i]["metrics"]!.ToJsonString());
        }
    }

    [Fact]
    public void AKilledRunResumesFromThePredictionsWritten()
    {
        var data = WriteData();
        var outDir = Path.Combine(_dir, "resume");
        var (rc, err) = Run(data, outDir, "--batch-size", "4");
        Assert.True(rc == 0, err);
        var complete = File.ReadAllText(Path.Combine(outDir, EvalRunRecipe.PredictionsFile));
        // As a kill mid-write leaves it: the first 5 lines and half of the 6th.
        var kept = complete.Split('\n').Take(6).ToArray();
        kept[5] = kept[5][..(kept[5].Length / 2)];
        File.WriteAllText(Path.Combine(outDir, EvalRunRecipe.PredictionsFile), string.Join('\n', kept));
        (rc, err) = Run(data, outDir, "--batch-size", "4");
        Assert.True(rc == 0, err);
        Assert.Contains("resuming: 5 of 11", err);
        Assert.Contains("1 unreadable line", err);
        var again = Lines(outDir);
        var before = complete.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(before.Select(l => l["prediction"]!.GetValue<string>()), again.Select(l => l["prediction"]!.GetValue<string>()));
        Assert.Equal(before.Select(l => l["id"]!.GetValue<string>()), again.Select(l => l["id"]!.GetValue<string>()));

        // Another model setting in the same folder is refused.
        (rc, err) = Run(data, outDir, "--batch-size", "4", "--temperature", "0.7");
        Assert.Equal(2, rc);
        Assert.Contains("temperature", err);
    }

    [Fact]
    public void LogLikelihoodChoiceIsTheArgmaxOfTheOptionSums()
    {
        var path = Path.Combine(_dir, "mc.jsonl");
        File.WriteAllLines(path,
        [
            """{"question": "What is the capital of France?", "choices": ["Paris", "red, blue, yellow", "an umbrella and sunglasses"], "answer": 0}""",
            """{"question": "Write hello in capitals.", "choices": ["hello", "HELLO"], "answerKey": "B"}""",
            """{"id": "x", "question": "Which colour?", "choices": {"text": ["blue", "pasta"], "label": ["A", "B"]}, "answer": "blue"}""",
        ]);
        var outDir = Path.Combine(_dir, "mc");
        var (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--model", TinyEvalModel.Path, "--data", path, "--format", "mc",
            "--out", outDir, "--max-new-tokens", "4", "--template", "raw");
        Assert.True(rc == 0, err);
        var lines = Lines(outDir);
        Assert.Equal(["0", "1", "x"], lines.Select(l => l["id"]!.GetValue<string>()));
        Assert.Equal(["A", "B", "A"], lines.Select(l => l["reference"]!.GetValue<string>()));
        foreach (var l in lines)
        {
            var m = l["metrics"]!;
            var sums = m["ll_options"]!.AsArray().Select(x => x!.GetValue<double>()).ToList();
            Assert.All(sums, s => Assert.True(s < 0));
            int best = sums.IndexOf(sums.Max());
            Assert.Equal(((char)('A' + best)).ToString(), m["ll_choice"]!.GetValue<string>());
            Assert.Equal(l["reference"]!.GetValue<string>() == m["ll_choice"]!.GetValue<string>() ? 1 : 0, m["ll_correct"]!.GetValue<int>());
        }
    }
}
