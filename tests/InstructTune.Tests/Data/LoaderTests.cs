using System.Text.Json;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;

namespace InstructTune.Tests.Data;

/// <summary>
/// Every shared dataset loads with the counts an independent Python count gives
/// (tools/golden/data_counts.py → tests/fixtures/data/dataset_counts.json).
/// </summary>
public class LoaderTests
{
    public static TheoryData<string> Datasets()
    {
        var data = new TheoryData<string>();
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("data", "dataset_counts.json")));
        foreach (var p in doc.RootElement.EnumerateObject()) data.Add(p.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Datasets))]
    public void DatasetLoadsWithIndependentCounts(string relative)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("data", "dataset_counts.json")));
        var expected = doc.RootElement.GetProperty(relative);
        var format = DataFormats.Parse(expected.GetProperty("format").GetString()!);
        var path = TestPaths.SharedTestData("datasets", relative);
        var validator = new RecordValidator(InvalidPolicy.Skip);
        var records = validator.Apply(DatasetLoader.Read(path, new LoadOptions(format))).ToList();

        Assert.Equal(expected.GetProperty("read").GetInt32(), validator.Read);
        Assert.Equal(expected.GetProperty("kept").GetInt32(), records.Count);
        var reasons = expected.GetProperty("rejected_by_reason").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        Assert.Equal(reasons.OrderBy(p => p.Key), validator.RejectedByReason.OrderBy(p => p.Key));
        Assert.All(records, r => Assert.False(string.IsNullOrEmpty(r.Task)));
        Assert.All(records, r => Assert.True(r.IsChat ? r.Messages!.Any(m => m.Role == "assistant") : r.Output.Trim().Length > 0));
    }

    [Fact]
    public void AlpacaEmptyOutputsAreRejectedWithTheirIndexAndField()
    {
        var path = TestPaths.SharedTestData("datasets", "alpaca", "alpaca_5000.json");
        var rejected = DatasetLoader.Read(path, new LoadOptions(DataFormat.Alpaca)).Where(i => i.Rejection != null).Select(i => i.Rejection!).ToList();
        // Independently: python3 -c "import json;a=json.load(open(p));print([i for i,r in enumerate(a) if not r['output'].strip()])"
        var expectedIndices = PythonIndicesOfEmptyOutputs(path);
        Assert.Equal(expectedIndices, rejected.Select(r => r.Source.Index));
        Assert.All(rejected, r => { Assert.Equal("output", r.Field); Assert.Equal(1, r.Source.Line); });
        var fail = Assert.Throws<DataFormatException>(() => new RecordValidator(InvalidPolicy.Fail).Apply(DatasetLoader.Read(path, new LoadOptions(DataFormat.Alpaca))).Count());
        Assert.Contains("alpaca_5000.json:1", fail.Message);
        Assert.Contains("'output'", fail.Message);
    }

    private static List<int> PythonIndicesOfEmptyOutputs(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.EnumerateArray().Select((r, i) => (r, i))
            .Where(p => p.r.GetProperty("output").GetString()!.Trim().Length == 0).Select(p => p.i).ToList();
    }

    [Fact]
    public void DollyCategoryIsTheTaskLabelAndContextTheInput()
    {
        var path = TestPaths.SharedTestData("datasets", "dolly-15k", "databricks-dolly-15k.head70.jsonl");
        var records = DatasetLoader.Read(path, new LoadOptions(DataFormat.Dolly)).Select(i => i.Record!).ToList();
        Assert.Equal("closed_qa", records[0].Task);   // line 1: "When did Virgin Australia start operating?"
        Assert.Equal(1, records[0].Source.Line);
        Assert.Equal(70, records[^1].Source.Line);
        Assert.Contains(records, r => r.Input.Length > 0 && r.Task == "closed_qa");
    }

    [Fact]
    public void SniBothLayoutsGiveDefinitionAsInstructionAndFirstOutput()
    {
        var current = DatasetLoader.Read(TestPaths.SharedTestData("datasets", "super-natural-instructions", "tasks", "task648_answer_generation.json"),
            new LoadOptions(DataFormat.Sni)).Select(i => i.Record!).First();
        Assert.StartsWith("You will see a sentence and a given pronoun.", current.Instruction);
        Assert.Equal("the city councilmen", current.Output);
        Assert.Equal("task648_answer_generation", current.Task);
        Assert.Equal("Coreference Resolution", current.Category);
        var legacy = DatasetLoader.Read(TestPaths.SharedTestData("datasets", "super-natural-instructions", "tasks_legacy_2021", "task321_stereoset_classification_religion.json"),
            new LoadOptions(DataFormat.Sni)).Select(i => i.Record!).First();
        Assert.StartsWith("Given two sentences regarding the stereotypes of religions", legacy.Instruction);
        Assert.Equal("unrelated", legacy.Output);
        Assert.Equal("Classification", legacy.Category);
    }

    [Fact]
    public void ShareGptToolCallsAreAssistantTurnsAndObservationsTool()
    {
        var path = TestPaths.SharedTestData("datasets", "llamafactory-demo", "glaive_toolcall_en_demo.json");
        var first = DatasetLoader.Read(path, new LoadOptions(DataFormat.ShareGpt)).First().Record!;
        Assert.Equal("system", first.Messages![0].Role);
        Assert.StartsWith("Tools: ", first.Messages[0].Content);
        Assert.Contains(first.Messages, m => m.Role == "tool");
        Assert.Equal(["system", "user", "assistant", "user", "assistant", "tool", "assistant"], first.Messages.Select(m => m.Role).Take(7));
    }

    [Fact]
    public void Gsm8kKeepsTheChainOfThoughtAndFinalAnswer()
    {
        var r = DatasetLoader.Read(TestPaths.SharedTestData("datasets", "gsm8k", "test.jsonl"), new LoadOptions(DataFormat.Gsm8k)).First().Record!;
        Assert.StartsWith("Janet", r.Instruction);
        Assert.EndsWith("#### 18", r.Output);
    }

    [Fact]
    public void FieldMapRenamesColumns()
    {
        var dir = Directory.CreateTempSubdirectory();
        var path = Path.Combine(dir.FullName, "x.jsonl");
        File.WriteAllText(path, "{\"prompt\":\"Say hi\",\"completion\":\"hi\"}\n");
        var r = DatasetLoader.Read(path, new LoadOptions(DataFormat.Alpaca, FieldMap.Parse("instruction=prompt,output=completion"))).Single().Record!;
        Assert.Equal(("Say hi", "hi"), (r.Instruction, r.Output));
    }

    [Fact]
    public void CsvRowsKeepTheirFirstLineAcrossQuotedNewlines()
    {
        var dir = Directory.CreateTempSubdirectory();
        var path = Path.Combine(dir.FullName, "x.csv");
        File.WriteAllText(path, "instruction,input,output\nAdd,\"1, 2\",3\n\"Two\nlines\",,ok\nEmpty,,\nShort\n");
        var items = DatasetLoader.Read(path, new LoadOptions(DataFormat.Csv)).ToList();
        Assert.Equal("1, 2", items[0].Record!.Input);
        Assert.Equal(2, items[0].Record!.Source.Line);
        Assert.Equal("Two\nlines", items[1].Record!.Instruction);
        Assert.Equal(3, items[1].Record!.Source.Line);
        Assert.Equal((5, RejectReason.EmptyOutput), (items[2].Rejection!.Source.Line, items[2].Rejection!.Reason));
        // A row with fewer (or more) cells than the header is refused as a whole, naming the counts (issue 22).
        Assert.Equal((6, RejectReason.BadCsvRow), (items[3].Rejection!.Source.Line, items[3].Rejection!.Reason));
        Assert.Contains("1 columns, the header has 3", items[3].Rejection!.Message);
    }
}

public class LlamaFactoryRegistryTests
{
    [Fact]
    public void RegistryResolvesLocalDemosAndListsTheRest()
    {
        var path = TestPaths.SharedTestData("datasets", "llamafactory-demo", "dataset_info.json");
        var entries = LlamaFactoryRegistry.Read(path);
        // python3 -c "import json;print(len(json.load(open(P))))" → 104 entries.
        Assert.Equal(104, entries.Count);
        var local = entries.Where(e => e.LocalPath != null).ToDictionary(e => e.Name);
        Assert.Equal(["alpaca_en_demo", "alpaca_zh_demo", "glaive_toolcall_en_demo", "identity", "kto_en_demo"], local.Keys.Order());
        Assert.Equal(DataFormat.Messages, local["kto_en_demo"].Format);
        Assert.Equal(DataFormat.ShareGpt, local["glaive_toolcall_en_demo"].Format);
        Assert.Contains(entries, e => e.Name == "c4_demo" && e.Missing!.Contains("not in"));
        Assert.Contains(entries, e => e.Missing == "hub dataset (no local file_name)");
        foreach (var e in local.Values)
        {
            var v = new RecordValidator(InvalidPolicy.Skip);
            var n = v.Apply(DatasetLoader.Read(e.LocalPath!, new LoadOptions(e.Format!.Value, e.Fields, e.Name))).Count();
            Assert.True(n >= 91 && v.Rejected == 0, $"{e.Name}: {n} kept, {v.Rejected} rejected");
        }
    }
}
