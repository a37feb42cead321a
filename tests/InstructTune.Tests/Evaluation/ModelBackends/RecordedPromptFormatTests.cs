using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Data.Templating;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Serving;
using InstructTune.Templates;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Evaluation.ModelBackends;

/// <summary>
/// Issue 12: an adapter trained with the alpaca template on a model whose tokenizer carries a chat template (llama2's)
/// records "alpaca" in its instructtune.json, and every inference command talks to it in alpaca: <c>eval model
/// --template auto</c>, <c>generate --prompt</c>, <c>score</c> ({"prompt","response"} lines) and <c>serve</c>'s chat
/// completions, each saying which format it used; the base model without the adapter still gets the chat template
/// (eval) or the text as given (generate). The expected prompts are built here from the Stanford Alpaca preamble text
/// and llama2's own chat template, not from the formatter under test.
/// </summary>
[Collection("Console")]
public class RecordedPromptFormatTests
{
    private const string Instruction = "Name a primary colour.";
    private static readonly Lazy<(string Model, string Adapter)> Trained = new(Train);

    private static string AlpacaPrompt(string instruction) =>
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
        + "### Instruction:\n" + instruction + "\n\n### Response:\n";

    // A random 1-layer model with the llama2 tokenizer (whose tokenizer_config.json has a chat template), and a LoRA
    // adapter trained for 2 steps on 8 alpaca records with data.template=alpaca.
    private static (string, string) Train()
    {
        var work = Directory.CreateTempSubdirectory("recorded-format").FullName;
        var model = Path.Combine(work, "model");
        Directory.CreateDirectory(model);
        foreach (var f in new[] { "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(TestPaths.SharedTestData("tokenizers", "llama2", f), Path.Combine(model, f));
        RandomCheckpoint.Create(new LlamaConfig { VocabSize = 32000, HiddenSize = 8, IntermediateSize = 16, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 1, MaxPositionEmbeddings = 512, BosTokenId = 1, EosTokenIds = [2] }, model, 3, DType.F32);
        var records = JsonDocument.Parse(File.ReadAllText(TestPaths.SharedTestData("datasets", "alpaca", "alpaca_5000.json")))
            .RootElement.EnumerateArray().Take(8).Select(e => e.GetRawText());
        var data = Path.Combine(work, "train.json");
        File.WriteAllText(data, "[" + string.Join(",", records) + "]");
        var run = Path.Combine(work, "run");
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", $"data.path={data}", "data.format=alpaca",
            "data.template=alpaca", "data.max_seq_len=256", "data.validation_fraction=0", $"checkpoint.output_dir={run}",
            "training.max_steps=2", "training.micro_batch_size=4", "logging.tensor_board=false", "lora.rank=2"]);
        using var recipe = FineTuneRecipe.Setup(config);
        var summary = recipe.Train(quiet: true);
        return (model, summary.ExportDir);
    }

    [Fact]
    public void TheAdapterRecordsAlpacaAndTheBaseModelHasAChatTemplate()
    {
        var (model, adapter) = Trained.Value;
        Assert.Equal("alpaca", PromptFormatFile.TryRead(adapter)!.Template);
        using var loaded = LoadedModel.Load(model, adapter);
        var format = loaded.PromptFormat(null);
        Assert.Equal("alpaca", format.Name);
        Assert.Contains(Path.Combine(adapter, PromptFormatFile.FileName), format.Describe());
        Assert.Equal(AlpacaPrompt(Instruction), format.Format(Instruction));
        // The same model without the adapter: its tokenizer's chat template (what auto used to pick for the adapter too).
        using var bare = LoadedModel.Load(model);
        var chat = bare.PromptFormat(null);
        Assert.Equal("chat", chat.Name);
        Assert.Equal(ChatTemplateLoader.FromTokenizer(model).Render([new ChatMessage("user", Instruction)], addGenerationPrompt: true).Text,
            chat.Format(Instruction));
    }

    [Fact]
    public void EvalModelAutoUsesTheRecordedAlpacaFormatAndWarnsOnAnExplicitMismatch()
    {
        var (model, adapter) = Trained.Value;
        var work = Directory.CreateTempSubdirectory("recorded-eval").FullName;
        var suite = Path.Combine(work, "suite.json");
        File.WriteAllText(suite, JsonSerializer.Serialize(new
        {
            name = "one", instructions = new[] { new { id = "a", instruction = Instruction, references = new[] { "Red." } } },
        }));
        string Template(string outDir, params string[] extra)
        {
            var (rc, _, err) = CliCapture.Run(["eval", "model", "--model", model, "--suite", suite, "--out", outDir, "--max-new-tokens", "2", .. extra]);
            Assert.True(rc == 0, err);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")));
            return doc.RootElement.GetProperty("Model").GetProperty("Template").GetString()! + "|" + err;
        }
        var auto = Template(Path.Combine(work, "auto"), "--adapter", adapter, "--template", "auto");
        Assert.StartsWith("alpaca|", auto);
        Assert.Contains("instructtune.json", auto);
        Assert.DoesNotContain("warning", auto);
        Assert.StartsWith("chat|", Template(Path.Combine(work, "base")));
        var forced = Template(Path.Combine(work, "forced"), "--adapter", adapter, "--template", "chat");
        Assert.StartsWith("chat|", forced);
        Assert.Contains("warning: --template chat differs from the prompt format", forced);
    }

    [Fact]
    public void GenerateFormatsThePromptWithTheRecordedFormatAndSaysSo()
    {
        var (model, adapter) = Trained.Value;
        var tok = TokenizerLoader.Load(model);
        int[] PromptIds(params string[] extra)
        {
            var (rc, stdout, err) = CliCapture.Run(["generate", "--model", model, "--prompt", Instruction, "--max-new-tokens", "1", "--json", .. extra]);
            Assert.True(rc == 0, err);
            if (extra.Length > 0) Assert.Contains($"prompt format: alpaca (recorded in {Path.Combine(adapter, PromptFormatFile.FileName)})", err);
            else Assert.Contains("prompt format: raw", err);
            return JsonDocument.Parse(stdout).RootElement.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        }
        Assert.Equal(tok.Encode(AlpacaPrompt(Instruction), addSpecialTokens: true).Ids, PromptIds("--adapter", adapter));
        Assert.Equal(tok.Encode(Instruction, addSpecialTokens: true).Ids, PromptIds());
    }

    [Fact]
    public void ScoreGivesTheResponseLossUnderTheRecordedFormat()
    {
        var (model, adapter) = Trained.Value;
        var tok = TokenizerLoader.Load(model);
        var work = Directory.CreateTempSubdirectory("recorded-score").FullName;
        var input = Path.Combine(work, "in.jsonl");
        File.WriteAllText(input, JsonSerializer.Serialize(new { prompt = Instruction, response = "Red is a primary colour." }) + "\n");
        var (rc, stdout, err) = CliCapture.Run(["score", "--model", model, "--adapter", adapter, "--input", input]);
        Assert.True(rc == 0, err);
        Assert.Contains("prompt format: alpaca (recorded in", err);
        var o = JsonDocument.Parse(stdout).RootElement;
        var ids = o.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        // The prompt's trailing newline moves to the response (lm-evaluation-harness's rule).
        var prompt = AlpacaPrompt(Instruction);
        Assert.Equal(tok.Encode(prompt + "Red is a primary colour.", addSpecialTokens: true).Ids, ids);
        int start = o.GetProperty("response_start").GetInt32();
        Assert.Equal(tok.Encode(prompt.TrimEnd(), addSpecialTokens: true).Ids.Length, start);
        var lp = o.GetProperty("next_token_logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(ids.Length - start, o.GetProperty("response_tokens").GetInt32());
        Assert.Equal(-lp[(start - 1)..].Average(), o.GetProperty("response_loss").GetDouble(), 12);
    }

    [Fact]
    public void ServeRendersChatRequestsForTheAdapterInAlpacaAndForTheBaseWithItsChatTemplate()
    {
        var (model, adapter) = Trained.Value;
        var tok = TokenizerLoader.Load(model);
        using var served = ServedModel.Load(model, [("tuned", adapter)], new ServeLimits(), name: "base");
        Assert.Contains(served.ChatFormats, f => f.Model == "tuned" && f.Format.StartsWith("alpaca (recorded in", StringComparison.Ordinal));
        Assert.Contains(served.ChatFormats, f => f.Model == "base" && f.Format.StartsWith("chat", StringComparison.Ordinal));
        List<ChatMessage> messages = [new("user", Instruction)];
        Assert.Equal(tok.Encode(AlpacaPrompt(Instruction), addSpecialTokens: true).Ids, served.ChatPromptIds(messages, "tuned"));
        var chat = ChatTemplateLoader.FromTokenizer(model).Render(messages, addGenerationPrompt: true).Text;
        Assert.Equal(tok.Encode(chat, addSpecialTokens: false).Ids, served.ChatPromptIds(messages, "base"));
    }
}
