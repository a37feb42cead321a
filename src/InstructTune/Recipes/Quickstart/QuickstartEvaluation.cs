using InstructTune.Data.Records;
using InstructTune.Data.TaskSuite;
using InstructTune.Data.Templating;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Tokenizers;

namespace InstructTune.Recipes.Quickstart;

/// <summary>One scored generation.</summary>
public sealed record QuickstartSample(string Split, string Task, string Instruction, string Input, string Expected, string Generated, bool Correct);

/// <summary>Exact match per split, with every generation kept for the report.</summary>
public sealed record QuickstartScores(IReadOnlyDictionary<string, double> ExactMatch, IReadOnlyList<QuickstartSample> Samples);

/// <summary>
/// Greedy generation with the KV cache from the saved base folder (+ the PEFT adapter), stopping at EOS; the answer
/// is the decoded continuation with surrounding whitespace trimmed, compared exactly (case matters: the suite's
/// answers are exact strings, e.g. "APPLE" for uppercase).
/// </summary>
public static class QuickstartEvaluation
{
    public static QuickstartScores Run(string baseDir, string? adapterDir, ITokenizer tokenizer, IPromptTemplate template,
        IReadOnlyDictionary<string, List<SuiteExample>> splits, int maxNewTokens)
    {
        using var loaded = LoadedModel.Load(baseDir, adapterDir, requireTokenizer: false);
        var model = loaded.Model;
        var options = new GenerationOptions
        {
            MaxNewTokens = maxNewTokens,
            StopTokenIds = tokenizer.EosId is int eos ? [eos] : [],
        };
        var em = new Dictionary<string, double>();
        var samples = new List<QuickstartSample>();
        foreach (var (split, examples) in splits)
        {
            var prompts = examples.Select(e => tokenizer.Encode(PromptText(template, e.Record), addSpecialTokens: true).Ids).ToList();
            var results = Generator.Generate(model, prompts, options);
            int correct = 0;
            for (int i = 0; i < examples.Count; i++)
            {
                var r = examples[i].Record;
                var text = tokenizer.Decode(results[i].GeneratedIds, skipSpecialTokens: true).Trim();
                bool ok = IsExactMatch(text, r.Output);
                if (ok) correct++;
                samples.Add(new QuickstartSample(split, r.Task, r.Instruction, r.Input, r.Output, text, ok));
            }
            em[split] = examples.Count == 0 ? 0 : (double)correct / examples.Count;
        }
        return new QuickstartScores(em, samples);
    }

    /// <summary>
    /// The training text up to where the answer starts (the template rendered with an empty output). The answer's
    /// leading space is part of the response (<see cref="QuickstartData.WithLeadingSpace"/>), so the prompt's tokens are
    /// exactly the unlearned prefix of the training tokens.
    /// </summary>
    public static string PromptText(IPromptTemplate template, InstructionRecord r) => template.Render(r with { Output = "" }).Text;

    /// <summary>The suite's answers are exact strings: only surrounding whitespace is ignored.</summary>
    public static bool IsExactMatch(string generated, string expected) =>
        string.Equals(generated.Trim(), expected.Trim(), StringComparison.Ordinal);
}
