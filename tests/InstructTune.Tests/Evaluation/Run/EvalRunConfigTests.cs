using System.Text.Json.Nodes;
using Parquet.Serialization;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// `itune eval run --config recipe.yaml`: the recipe's eval: section names held-out sets (a Parquet file written here
/// with Parquet.Net's own writer, and a JSONL file) and the run evaluates the recipe's model on each into
/// eval.output_dir/&lt;set&gt;; unknown eval keys are refused naming the key.
/// </summary>
[Collection("Console")]
public sealed class EvalRunConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-evalrun-config").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public sealed class Row { public string? instruction { get; set; } public string? input { get; set; } public string? output { get; set; } }

    [Fact]
    public void RecipeHeldOutSetsIncludingParquetAreEvaluated()
    {
        var rows = Enumerable.Range(0, 5).Select(i => new Row { instruction = $"Repeat the number {i}.", input = "", output = $"{i}" }).ToList();
        var parquet = Path.Combine(_dir, "heldout_a.parquet");
        using (var fs = File.Create(parquet)) ParquetSerializer.SerializeAsync(rows, fs).GetAwaiter().GetResult();
        var jsonl = Path.Combine(_dir, "heldout_b.jsonl");
        File.WriteAllLines(jsonl, rows.Take(3).Select(r => new JsonObject { ["instruction"] = r.instruction, ["input"] = "", ["output"] = r.output }.ToJsonString()));
        var recipe = Path.Combine(_dir, "recipe.yaml");
        File.WriteAllText(recipe, $"""
            model:
              path: {ModelBackends.TinyEvalModel.Path}
            data:
              format: alpaca
            checkpoint:
              output_dir: {Path.Combine(_dir, "run")}
            eval:
              heldout: [{parquet}, {jsonl}]
              template: alpaca
              max_new_tokens: 3
              robustness: 2
              paraphrases: 2
            """);
        var (rc, stdout, err) = Evaluation.CliCapture.Run("eval", "run", "--config", recipe);
        Assert.True(rc == 0, err);
        foreach (var (name, count) in new[] { ("heldout_a", 5), ("heldout_b", 3) })
        {
            var dir = Path.Combine(_dir, "run", "eval", name);
            var results = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "results.json")))!;
            Assert.Equal(count, results["count"]!.GetValue<int>());
            Assert.Equal(2, results["robustness"]!["examples"]!.GetValue<int>());
            Assert.Equal(count, File.ReadAllLines(Path.Combine(dir, "predictions.jsonl")).Length);
            Assert.Contains(Path.Combine(dir, "report.html"), stdout);
        }
        var first = JsonNode.Parse(File.ReadLines(Path.Combine(_dir, "run", "eval", "heldout_a", "predictions.jsonl")).First())!;
        Assert.Equal("0", first["reference"]!.GetValue<string>());
        Assert.Contains("Repeat the number 0.", first["prompt"]!.GetValue<string>());

        // Overrides reach the section; an unknown key is refused by name.
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--config", recipe, "eval.no_such_key=1");
        Assert.Equal(2, rc);
        Assert.Contains("eval.no_such_key", err);
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--config", recipe, "eval.heldout=[]");
        Assert.Equal(2, rc);
        Assert.Contains("eval.heldout", err);
    }
}
