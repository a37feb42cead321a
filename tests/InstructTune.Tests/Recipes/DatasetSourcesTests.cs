using System.Text.Json;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;
using Parquet.Serialization;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Issue 12: datasets the recipe reaches besides JSON/JSONL/CSV — Parquet files and the Hugging Face
/// data/&lt;split&gt;-0000x-of-0000n.parquet layout (with a list-of-struct messages column), and LLaMA-Factory's
/// dataset_info.json by entry name. The Parquet files are written here with Parquet.Net's own writer from known rows.
/// </summary>
public class DatasetSourcesTests
{
    public sealed class Message { public string? role { get; set; } public string? content { get; set; } }
    public sealed class ChatRow { public string? id { get; set; } public List<Message>? messages { get; set; } }
    public sealed class AlpacaRow { public string? prompt { get; set; } public string? input { get; set; } public string? output { get; set; } }

    private static List<ChatRow> Chats(string prefix, int n) => Enumerable.Range(0, n).Select(i => new ChatRow
    {
        id = $"{prefix}{i}",
        messages = [new() { role = "user", content = $"{prefix} question {i}?" }, new() { role = "assistant", content = $"{prefix} answer {i}." },
                    new() { role = "user", content = "And then?" }, new() { role = "assistant", content = $"Then {i}." }],
    }).ToList();

    private static void Write<T>(IEnumerable<T> rows, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var fs = File.Create(path);
        ParquetSerializer.SerializeAsync(rows, fs).GetAwaiter().GetResult();
    }

    [Fact]
    public void AHuggingFaceParquetFolderWithMessagesTrainsOnItsSplitInShardOrder()
    {
        var dir = Directory.CreateTempSubdirectory("hfparquet").FullName;
        var a = Chats("a", 7);
        var b = Chats("b", 5);
        Write(a, Path.Combine(dir, "data", "train-00000-of-00002.parquet"));
        Write(b, Path.Combine(dir, "data", "train-00001-of-00002.parquet"));
        Write(Chats("t", 3), Path.Combine(dir, "data", "test-00000-of-00001.parquet"));

        var records = DatasetLoader.Read(dir, new LoadOptions(DataFormat.Parquet)).ToList();
        Assert.All(records, r => Assert.Null(r.Rejection));
        Assert.Equal(a.Concat(b).Select(r => r.messages![1].content), records.Select(r => r.Record!.Messages![1].Content));
        Assert.Equal($"{Path.Combine(dir, "data", "train-00001-of-00002.parquet")} (record 8)", records[8].Record!.Source.ToString());
        Assert.Equal(3, DatasetLoader.Read(dir, new LoadOptions(DataFormat.Messages, Split: "test")).Count());

        var tokDir = TestPaths.SharedTestData("tokenizers", "qwen2.5");
        var tok = TokenizerLoader.Load(tokDir);
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.tokenizer={tokDir}", $"data.datasets=[{{path: {dir}, format: parquet, split: train}}]",
            "data.template=chat", "data.validation_fraction=0", "data.dedup=off"]);
        var prepared = PrepareRecipe.Run(config, tok, tokDir, Path.Combine(dir, "out"));
        var examples = prepared.Stages.Single();
        Assert.Equal(12, examples.Count);
        for (int i = 0; i < 12; i++)
        {
            var row = i < 7 ? a[i] : b[i - 7];
            var learned = PrepareDump.Line(examples[i], tok, prepared.TaskNames)["learned_spans"];
            Assert.Equal(new[] { row.messages![1].content + "<|im_end|>", row.messages[3].content + "<|im_end|>" }, learned);
        }
    }

    [Fact]
    public void AParquetFileWithRenamedColumnsReadsAsAlpaca()
    {
        var dir = Directory.CreateTempSubdirectory("alpacaparquet").FullName;
        var rows = Enumerable.Range(0, 9).Select(i => new AlpacaRow { prompt = $"Count to {i}.", input = "", output = string.Join(" ", Enumerable.Range(1, i + 1)) }).ToList();
        var file = Path.Combine(dir, "train.parquet");
        Write(rows, file);
        var read = DatasetLoader.Read(file, new LoadOptions(DataFormat.Alpaca, FieldMap.Parse("instruction=prompt"))).Select(r => r.Record!).ToList();
        Assert.Equal(rows.Select(r => (r.prompt, r.output)), read.Select(r => ((string?)r.Instruction, (string?)r.Output)));
        // Without the mapping the missing column is a located rejection, not a crash.
        var bad = DatasetLoader.Read(file, new LoadOptions(DataFormat.Alpaca)).First();
        Assert.Equal(RejectReason.MissingField, bad.Rejection!.Reason);
        Assert.Equal("instruction", bad.Rejection.Field);
    }

    [Fact]
    public void LlamaFactoryEntriesAreReadByName()
    {
        var info = TestPaths.SharedTestData("datasets", "llamafactory-demo", "dataset_info.json");
        var tokDir = TestPaths.SharedTestData("tokenizers", "llama2");
        var tok = TokenizerLoader.Load(tokDir);
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.tokenizer={tokDir}", "data.validation_fraction=0", "data.dedup=off", "data.template=llama2",
            $"data.datasets=[{{path: {info}, name: identity}}, {{path: {Path.GetDirectoryName(info)}, name: kto_en_demo}}]"]);
        var prepared = PrepareRecipe.Run(config, tok, tokDir, Directory.CreateTempSubdirectory("lf").FullName);
        using var identity = JsonDocument.Parse(File.ReadAllText(TestPaths.SharedTestData("datasets", "llamafactory-demo", "identity.json")));
        using var kto = JsonDocument.Parse(File.ReadAllText(TestPaths.SharedTestData("datasets", "llamafactory-demo", "kto_en_demo.json")));
        Assert.Equal(identity.RootElement.GetArrayLength(), prepared.Datasets[0].Stats.RecordsRead);
        Assert.Equal(kto.RootElement.GetArrayLength(), prepared.Datasets[1].Stats.RecordsRead);
        Assert.Equal(0, prepared.Datasets[1].Stats.RecordsRejected);
        var e = Assert.Throws<ConfigException>(() => PrepareRecipe.Resolve(ConfigLoader.LoadFromString<TrainConfig>("", [$"data.datasets=[{{path: {info}, name: no_such}}]"]).Data));
        Assert.Contains("data.datasets[0].name", e.Message);
        Assert.Contains("alpaca_en_demo", e.Message);
    }
}
