using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Issue 12 acceptance: `data.template: chat` on ShareGPT and OpenAI-messages data with the Qwen2.5, Llama-3 and Phi-3
/// tokenizers. For every example, each run of learned tokens decodes to exactly one assistant message's content plus
/// its end-of-turn marker as the template writes it, in order, and nothing else is learned; with
/// `train_on: last_assistant` only the last one. The expected text is built here from the messages themselves and
/// the marker each model card documents, not from the pipeline's spans.
/// </summary>
public class ChatTemplateTrainingTests
{
    // (tokenizer, end-of-turn marker, whether the template trims message content)
    public static TheoryData<string, string, bool, string, string> Cases()
    {
        var d = new TheoryData<string, string, bool, string, string>();
        foreach (var (tok, marker, trims) in new[] { ("qwen2.5", "<|im_end|>", false), ("llama3", "<|eot_id|>", true), ("phi3-mini", "<|end|>", false) })
        {
            d.Add(tok, marker, trims, "sharegpt-fastchat/dummy_conversation.json", "sharegpt");
            d.Add(tok, marker, trims, "openai-messages/toy_chat_fine_tuning.jsonl", "messages");
        }
        return d;
    }

    private static TrainConfig Recipe(string data, string format, string tokenizer, params string[] extra) =>
        ConfigLoader.LoadFromString<TrainConfig>("", [$"data.path={data}", $"data.format={format}", "data.template=chat", "data.max_seq_len=100000",
            "data.validation_fraction=0", "data.dedup=off", "data.skip_invalid=true", $"model.tokenizer={tokenizer}", .. extra]);

    /// <summary>The assistant messages of every record the loader keeps, in file order.</summary>
    private static List<List<string>> AssistantTurns(string path, string format) =>
        InstructTune.Data.Loading.DatasetLoader.Read(path, new InstructTune.Data.Loading.LoadOptions(InstructTune.Data.Loading.DataFormats.Parse(format)))
            .Where(i => i.Record != null).Select(i => i.Record!.Messages!.Where(m => m.Role == "assistant").Select(m => m.Content).ToList()).ToList();

    private static List<string> LearnedRuns(TokenizedExample e, ITokenizer tok)
    {
        var runs = new List<string>();
        for (int t = 0; t < e.Length; t++)
        {
            if (e.Labels[t] == TokenizedExample.IgnoreIndex) continue;
            int start = t;
            while (t < e.Length && e.Labels[t] != TokenizedExample.IgnoreIndex) t++;
            runs.Add(tok.Decode(e.Ids.AsSpan(start, t - start)));
        }
        return runs;
    }

    private static string Short(List<string> xs) { var j = JsonSerializer.Serialize(xs); return j.Length > 600 ? j[..600] + "…" : j; }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LearnedTokensAreExactlyEachAssistantTurnAndItsEndMarker(string tokenizer, string marker, bool trims, string relative, string format)
    {
        var tokDir = TestPaths.SharedTestData("tokenizers", tokenizer);
        var data = TestPaths.SharedTestData("datasets", relative);
        var tok = TokenizerLoader.Load(tokDir);
        var expectedTurns = AssistantTurns(data, format);
        foreach (var policy in new[] { "assistant", "last_assistant" })
        {
            var outDir = Directory.CreateTempSubdirectory("chatprep").FullName;
            var prepared = PrepareRecipe.Run(Recipe(data, format, tokDir, $"data.train_on={policy}"), tok, tokDir, outDir);
            var examples = prepared.Stages.Single();
            Assert.Equal(expectedTurns.Count, examples.Count);
            for (int i = 0; i < examples.Count; i++)
            {
                var turns = expectedTurns[i].Select(c => (trims ? c.Trim() : c) + marker).ToList();
                if (policy == "last_assistant") turns = [turns[^1]];
                var runs = LearnedRuns(examples[i], tok);
                Assert.True(turns.SequenceEqual(runs), $"{tokenizer} {relative} #{i} ({policy}):\nexpected {Short(turns)}\nlearned  {Short(runs)}");
            }
        }
    }

    [Fact]
    public void TrainOnEosNoneAndLastChangeOnlyTheMarkers()
    {
        var tokDir = TestPaths.SharedTestData("tokenizers", "qwen2.5");
        var data = TestPaths.SharedTestData("datasets", "sharegpt-fastchat", "dummy_conversation.json");
        var tok = TokenizerLoader.Load(tokDir);
        var turns = AssistantTurns(data, "sharegpt")[0];
        Assert.True(turns.Count >= 2);
        var none = PrepareRecipe.Run(Recipe(data, "sharegpt", tokDir, "data.train_on_eos=none"), tok, tokDir, Directory.CreateTempSubdirectory("eos").FullName);
        Assert.Equal(turns, LearnedRuns(none.Stages[0][0], tok));
        var last = PrepareRecipe.Run(Recipe(data, "sharegpt", tokDir, "data.train_on_eos=last"), tok, tokDir, Directory.CreateTempSubdirectory("eos").FullName);
        Assert.Equal(turns.Select((t, i) => i == turns.Count - 1 ? t + "<|im_end|>" : t), LearnedRuns(last.Stages[0][0], tok));
    }

    [Fact]
    public void GenerationBlocksDecideWhatIsLearned()
    {
        // A ChatML template that marks only the assistant content and its <|im_end|> as generation.
        var dir = Directory.CreateTempSubdirectory("gen").FullName;
        var jinja = Path.Combine(dir, "gen.jinja");
        File.WriteAllText(jinja, "{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' }}{%- if m.role == 'assistant' %}{% generation %}{{ 'A: ' + m.content + '<|im_end|>' }}{% endgeneration %}{%- else %}{{ m.content + '<|im_end|>' }}{%- endif %}{{ '\\n' }}{%- endfor %}");
        var tokDir = TestPaths.SharedTestData("tokenizers", "qwen2.5");
        var tok = TokenizerLoader.Load(tokDir);
        var data = TestPaths.SharedTestData("datasets", "sharegpt-fastchat", "dummy_conversation.json");
        var prepared = PrepareRecipe.Run(Recipe(data, "sharegpt", tokDir, $"data.template={jinja}"), tok, tokDir, Directory.CreateTempSubdirectory("gen").FullName);
        var turns = AssistantTurns(data, "sharegpt")[0];
        // The "A: " prefix is template text inside the block: learned, as transformers' assistant mask has it.
        Assert.Equal(turns.Select(t => "A: " + t + "<|im_end|>"), LearnedRuns(prepared.Stages[0][0], tok));
    }

    [Fact]
    public void ATemplateWithTokensTheVocabularyLacksIsRefused()
    {
        var dir = Directory.CreateTempSubdirectory("missing").FullName;
        var jinja = Path.Combine(dir, "t.jinja");
        File.WriteAllText(jinja, "{%- for m in messages %}{{ '<|turn_start|>' + m.role + '\\n' + m.content + '<|turn_end|>' }}{%- endfor %}");
        var tokDir = TestPaths.SharedTestData("tokenizers", "qwen2.5");
        var data = TestPaths.SharedTestData("datasets", "sharegpt-fastchat", "dummy_conversation.json");
        var e = Assert.Throws<ConfigException>(() => PrepareRecipe.Run(Recipe(data, "sharegpt", tokDir, $"data.template={jinja}"), TokenizerLoader.Load(tokDir), tokDir, dir));
        Assert.Contains("<|turn_end|>", e.Message);
        Assert.Contains("data.template", e.Message);
    }

    [Fact]
    public void TrainingWithTheChatTemplateRecordsThePromptFormatInTheRunAndAdapterFolders()
    {
        var tokDir = TestPaths.SharedTestData("tokenizers", "qwen2.5");
        var work = Directory.CreateTempSubdirectory("chattrain").FullName;
        var model = Path.Combine(work, "model");
        RandomCheckpoint.Create(new LlamaConfig { VocabSize = 151_665, HiddenSize = 8, IntermediateSize = 16, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 1, MaxPositionEmbeddings = 512 }, model, 1, DType.F32);
        var lines = File.ReadAllLines(TestPaths.SharedTestData("datasets", "openai-messages", "toy_chat_fine_tuning.jsonl")).Take(8);
        var data = Path.Combine(work, "chat.jsonl");
        File.WriteAllLines(data, lines);
        var run = Path.Combine(work, "run");
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", $"model.tokenizer={tokDir}", $"data.path={data}", "data.format=messages",
            "data.template=chat", "data.max_seq_len=256", "data.validation_fraction=0", $"checkpoint.output_dir={run}", "training.max_steps=2",
            "training.micro_batch_size=2", "logging.tensor_board=false", "lora.rank=2"]);
        var summary = FineTuneRecipe.Setup(config).Train(quiet: true);
        Assert.Equal(2, summary.Steps);
        Assert.True(double.IsFinite(summary.FinalLoss));
        var source = JsonDocument.Parse(File.ReadAllText(Path.Combine(tokDir, "tokenizer_config.json"))).RootElement.GetProperty("chat_template").GetString();
        foreach (var dir in new[] { run, summary.ExportDir })
        {
            var recorded = PromptFormatFile.TryRead(dir)!;
            Assert.Equal("chat", recorded.Template);
            Assert.Equal("Assistant", recorded.TrainOn);
            Assert.Equal(source, recorded.ChatTemplate);
            Assert.Equal("<|im_end|>", recorded.SpecialTokens["eos_token"]);
            Assert.Equal(source, File.ReadAllText(Path.Combine(dir, PromptFormatFile.ChatTemplateFile)));
        }
        Assert.True(File.Exists(Path.Combine(summary.ExportDir, "adapter_config.json")));
    }
}
