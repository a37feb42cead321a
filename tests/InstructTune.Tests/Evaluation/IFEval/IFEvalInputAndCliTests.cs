using System.CommandLine;
using System.Text.Json;
using InstructTune.Cli.Commands;
using InstructTune.Evaluation.IFEval;

namespace InstructTune.Tests.Evaluation.IFEval;

/// <summary>Bad inputs are reported line by line; the CLI writes IFEval's output files.</summary>
[Collection("Console")]
public class IFEvalInputAndCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ifeval-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, params string[] lines)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    private const string P1 = """{"key": 1, "prompt": "Say hi without commas.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}""";
    private const string P2 = """{"key": 2, "prompt": "Shout.", "instruction_id_list": ["change_case:english_capital", "startend:quotation"], "kwargs": [{}, {}]}""";

    [Fact]
    public void Responses_MissingExtraAndBrokenLines_AreAllReported()
    {
        var input = Write("input.jsonl", P1, P2);
        var responses = Write("responses.jsonl",
            """{"prompt": "Say hi without commas.", "response": "hi"}""",
            """{"prompt": "Not in the input", "response": "x"}""",
            """{"prompt": "Shout." "response": "broken"}""",
            """{"prompt": "Say hi without commas."}""");
        var prompts = IFEvalReader.ReadPrompts(input);
        var e = Assert.Throws<IFEvalInputException>(() => IFEvalReader.ReadResponses(responses, prompts, input));
        Assert.Equal(4, e.Problems.Count);
        Assert.Contains(e.Problems, p => p.Contains("responses.jsonl:2") && p.Contains("extra prompt"));
        Assert.Contains(e.Problems, p => p.Contains("responses.jsonl:3") && p.Contains("broken JSON"));
        Assert.Contains(e.Problems, p => p.Contains("responses.jsonl:4") && p.Contains("'response'"));
        Assert.Contains(e.Problems, p => p.Contains("missing response for key 2") && p.Contains("input.jsonl:2"));
    }

    [Fact]
    public void Input_UnknownIdsAndBadLines_AreNamed()
    {
        var input = Write("input.jsonl", P1,
            """{"key": 3, "prompt": "x", "instruction_id_list": ["keywords:key_sentences", "detectable_format:rephrase"], "kwargs": [{}, {}]}""",
            """{"key": 4, "prompt": "y", "instruction_id_list": ["punctuation:no_comma"], "kwargs": []}""",
            "not json");
        var e = Assert.Throws<IFEvalInputException>(() => IFEvalReader.ReadPrompts(input));
        Assert.Contains(e.Problems, p => p.Contains("input.jsonl:2") && p.Contains("'keywords:key_sentences'"));
        Assert.Contains(e.Problems, p => p.Contains("input.jsonl:2") && p.Contains("'detectable_format:rephrase'"));
        Assert.Contains(e.Problems, p => p.Contains("input.jsonl:3") && p.Contains("kwargs"));
        Assert.Contains(e.Problems, p => p.Contains("input.jsonl:4") && p.Contains("broken JSON"));
    }

    [Fact]
    public void DuplicateResponse_LastWins_WithWarning()
    {
        var input = Write("input.jsonl", P1);
        var responses = Write("responses.jsonl",
            """{"prompt": "Say hi without commas.", "response": "hi, there"}""",
            """{"prompt": "Say hi without commas.", "response": "hi there"}""");
        var warnings = new List<string>();
        var map = IFEvalReader.ReadResponses(responses, IFEvalReader.ReadPrompts(input), input, warnings);
        Assert.Equal("hi there", map["Say hi without commas."]);
        Assert.Single(warnings);
        Assert.Contains("responses.jsonl:2", warnings[0]);
    }

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var root = new RootCommand("test");
        var eval = new Command("eval", "Evaluation");
        eval.Subcommands.Add(IFEvalCommands.CreateIfevalCommand());
        root.Subcommands.Add(eval);
        return TestConsole.Run(() => root.Parse(args).Invoke());
    }

    [Fact]
    public void Cli_WritesOfficialShapedOutputs()
    {
        var input = Write("input.jsonl", P1, P2);
        var responses = Write("responses.jsonl",
            """{"prompt": "Shout.", "response": "\"HELLO, THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHER.\""}""",
            """{"prompt": "Say hi without commas.", "response": "Sure!\nhi, friend\nBye"}""");
        var outDir = Path.Combine(_dir, "out");
        var (code, stdout, stderr) = Cli("eval", "ifeval", "--input", input, "--responses", responses, "--out", outDir,
            "--punkt-dir", TestPaths.SharedTestData("nltk-punkt-english"),
            "--langdetect-profiles", TestPaths.SharedTestData("langdetect-profiles"));
        Assert.True(code == 0, stderr);
        Assert.Contains("strict", stdout);

        var strict = File.ReadAllLines(Path.Combine(outDir, "eval_results_strict.jsonl"));
        Assert.Equal(
            """{"follow_all_instructions": false, "follow_instruction_list": [false], "instruction_id_list": ["punctuation:no_comma"], "prompt": "Say hi without commas.", "response": "Sure!\nhi, friend\nBye"}""",
            strict[0]);
        Assert.StartsWith("""{"follow_all_instructions": true, "follow_instruction_list": [true, true]""", strict[1]);
        // Loose: removing the first and last lines does not remove the comma, so it still fails.
        var loose = File.ReadAllLines(Path.Combine(outDir, "eval_results_loose.jsonl"));
        Assert.StartsWith("""{"follow_all_instructions": false, "follow_instruction_list": [false]""", loose[0]);

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        Assert.Equal(0.5, summary.RootElement.GetProperty("strict").GetProperty("prompt_level_accuracy").GetDouble());
        Assert.Equal(2.0 / 3, summary.RootElement.GetProperty("loose").GetProperty("instruction_level_accuracy").GetDouble(), 12);
        Assert.Equal(0UL, summary.RootElement.GetProperty("langdetect_seed").GetUInt64());
        Assert.Equal("upstream", summary.RootElement.GetProperty("rules").GetString());
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp-*"));
    }

    [Fact]
    public void Writer_IsByteIdenticalToOfficialWriteOutputs()
    {
        // tools/golden/ifeval_text_goldens.py: the first 25 GPT-4 prompts, strict then loose, as json.dumps writes them.
        var expected = File.ReadAllLines(TestPaths.Fixtures("ifeval", "official_output_head.jsonl"));
        var run = IFEvalRun.Run(IFEvalSharedData.Input, IFEvalSharedData.Responses(IFEvalSharedData.Gpt4), IFEvalSharedData.Services);
        using var w = new StringWriter();
        IFEvalWriter.WriteResults(w, [.. run.Strict.Take(25), .. run.Loose.Take(25)]);
        Assert.Equal(expected, w.ToString().TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void Cli_RandomSeedAnd2023Rules_Run_BadRuleIsRejected()
    {
        var input = Write("input.jsonl", P1);
        var responses = Write("responses.jsonl", """{"prompt": "Say hi without commas.", "response": "hi"}""");
        string[] data = ["--punkt-dir", TestPaths.SharedTestData("nltk-punkt-english"),
            "--langdetect-profiles", TestPaths.SharedTestData("langdetect-profiles")];
        var (code, _, stderr) = Cli(["eval", "ifeval", "--input", input, "--responses", responses, "--out", Path.Combine(_dir, "r"),
            "--seed", "random", "--rules", "2023", "--rules-seed", "random", .. data]);
        Assert.True(code == 0, stderr);
        (code, _, stderr) = Cli(["eval", "ifeval", "--input", input, "--responses", responses, "--out", Path.Combine(_dir, "r"),
            "--rules", "2024", .. data]);
        Assert.Equal(2, code);
        Assert.Contains("--rules must be 'upstream' or '2023'", stderr);
    }

    [Fact]
    public void Cli_BadInput_ExitCode2_ListsProblems()
    {
        var input = Write("input.jsonl", P1);
        var responses = Write("responses.jsonl", "{oops");
        var (code, _, stderr) = Cli("eval", "ifeval", "--input", input, "--responses", responses, "--out", Path.Combine(_dir, "o"),
            "--punkt-dir", TestPaths.SharedTestData("nltk-punkt-english"),
            "--langdetect-profiles", TestPaths.SharedTestData("langdetect-profiles"));
        Assert.Equal(2, code);
        Assert.Contains("responses.jsonl:1: broken JSON", stderr);
        Assert.Contains("missing response for key 1", stderr);
    }
}
