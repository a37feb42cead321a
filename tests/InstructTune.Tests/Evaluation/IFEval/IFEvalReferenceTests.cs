using System.Text.Json;
using InstructTune.Evaluation.IFEval;
using InstructTune.Evaluation.IFEval.Instructions;
using InstructTune.Evaluation.IFEval.LangDetect;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Tests.Evaluation.IFEval;

/// <summary>
/// The four response sets against tools/golden/ifeval_reference.py, which applies the official rules with the
/// genuine libraries (Python re/json, nltk 3.8 Punkt and tokenizers, langdetect 1.0.9 seeded with 0).
/// </summary>
public class IFEvalReferenceTests
{
    public sealed record Ref(string Set, long Key, bool[] Strict, bool[] Loose, int Sentences, int CapitalWords,
        int Words, string? Lang, double? LangProb);

    private static readonly Lazy<List<Ref>> References = new(() =>
        File.ReadLines(TestPaths.Fixtures("ifeval", "reference_results.jsonl")).Select(l =>
        {
            var e = JsonDocument.Parse(l).RootElement;
            return new Ref(e.GetProperty("set").GetString()!, e.GetProperty("key").GetInt64(),
                e.GetProperty("strict").EnumerateArray().Select(b => b.GetBoolean()).ToArray(),
                e.GetProperty("loose").EnumerateArray().Select(b => b.GetBoolean()).ToArray(),
                e.GetProperty("sentences").GetInt32(), e.GetProperty("capital_words").GetInt32(),
                e.GetProperty("words").GetInt32(),
                e.GetProperty("lang").ValueKind == JsonValueKind.Null ? null : e.GetProperty("lang").GetString(),
                e.GetProperty("lang_prob").ValueKind == JsonValueKind.Null ? null : e.GetProperty("lang_prob").GetDouble());
        }).ToList());

    public static TheoryData<string> Sets => new()
    {
        IFEvalSharedData.Gpt4, "contextfocus_m0", "contextfocus_m3", "contextfocus_cad_alpha1",
    };

    [Theory]
    [MemberData(nameof(Sets))]
    public void ResponseSet_AgreesWithReference(string set)
    {
        var run = IFEvalRun.Run(IFEvalSharedData.Input, IFEvalSharedData.Responses(set), IFEvalSharedData.Services);
        var prompts = IFEvalReader.ReadPrompts(IFEvalSharedData.Input);
        var refs = References.Value.Where(r => r.Set == set).ToDictionary(r => r.Key);
        Assert.Equal(prompts.Count, refs.Count);

        int agree = 0;
        var mismatches = new List<string>();
        for (int i = 0; i < prompts.Count; i++)
        {
            var r = refs[prompts[i].Key];
            bool same = r.Strict.SequenceEqual(run.Strict[i].FollowInstructionList)
                        && r.Loose.SequenceEqual(run.Loose[i].FollowInstructionList);
            if (same) agree++;
            else mismatches.Add($"key {prompts[i].Key}: strict {Fmt(run.Strict[i].FollowInstructionList)} vs {Fmt(r.Strict)}, loose {Fmt(run.Loose[i].FollowInstructionList)} vs {Fmt(r.Loose)}");
        }
        Assert.True(agree >= 0.995 * prompts.Count, $"{agree}/{prompts.Count} prompts agree:\n" + string.Join("\n", mismatches));

        // The four accuracies to 3 decimals.
        var refStrict = IFEvalAccuracy.Of(prompts.Select((p, i) => Result(p, refs[p.Key].Strict)).ToList());
        var refLoose = IFEvalAccuracy.Of(prompts.Select((p, i) => Result(p, refs[p.Key].Loose)).ToList());
        Assert.Equal(Math.Round(refStrict.PromptLevel, 3), Math.Round(run.Summary.Strict.PromptLevel, 3));
        Assert.Equal(Math.Round(refStrict.InstructionLevel, 3), Math.Round(run.Summary.Strict.InstructionLevel, 3));
        Assert.Equal(Math.Round(refLoose.PromptLevel, 3), Math.Round(run.Summary.Loose.PromptLevel, 3));
        Assert.Equal(Math.Round(refLoose.InstructionLevel, 3), Math.Round(run.Summary.Loose.InstructionLevel, 3));
    }

    [Theory]
    [MemberData(nameof(Sets))]
    public void Counts_And_Language_MatchNltkAndLangdetect(string set)
    {
        var prompts = IFEvalReader.ReadPrompts(IFEvalSharedData.Input);
        var responses = IFEvalReader.ReadResponses(IFEvalSharedData.Responses(set), prompts, IFEvalSharedData.Input);
        var refs = References.Value.Where(r => r.Set == set).ToDictionary(r => r.Key);
        var s = IFEvalSharedData.Services;
        var bad = new List<string>();
        foreach (var p in prompts)
        {
            var text = responses[p.Prompt];
            var r = refs[p.Key];
            int sentences = s.Sentences.Tokenize(text).Count;
            int capitals = s.Words.WordTokenize(text).Count(PyUnicode.IsUpper);
            int words = PyUnicode.CountWordRuns(text);
            string? lang;
            double? prob;
            try
            {
                var top = s.Language.Probabilities(text);
                (lang, prob) = top.Count > 0 ? (top[0].Lang, top[0].Prob) : ("unknown", 0.0);
            }
            catch (LangDetectException)
            {
                (lang, prob) = (null, null);
            }
            if (sentences != r.Sentences) bad.Add($"key {p.Key}: sentences {sentences} vs nltk {r.Sentences}");
            if (capitals != r.CapitalWords) bad.Add($"key {p.Key}: capital words {capitals} vs nltk {r.CapitalWords}");
            if (words != r.Words) bad.Add($"key {p.Key}: words {words} vs nltk {r.Words}");
            if (lang != r.Lang || (prob is { } a && r.LangProb is { } b && Math.Abs(a - b) > 1e-9))
                bad.Add($"key {p.Key}: langdetect {lang}:{prob} vs {r.Lang}:{r.LangProb}");
        }
        Assert.True(bad.Count == 0, string.Join("\n", bad));
    }

    private static IFEvalResult Result(IFEvalPrompt p, bool[] follows) =>
        new(p.InstructionIds, p.Prompt, "", follows.All(f => f), follows);

    private static string Fmt(IEnumerable<bool> b) => "[" + string.Join(",", b.Select(x => x ? "T" : "F")) + "]";
}

/// <summary>Every instruction instance of input_data.jsonl (834) on 150 seeded synthetic responses built from the
/// pieces the checks look for, against tools/golden/ifeval_reference.py (strict check_following).</summary>
public class IFEvalInstructionFuzzTests
{
    [Fact]
    [Trait("Category", "Slow")] // 125,100 checks, ~15 s on 2 cores
    public void AllInstructionInstances_OnSyntheticResponses_MatchReference()
    {
        var s = IFEvalSharedData.Services;
        var prompts = IFEvalReader.ReadPrompts(IFEvalSharedData.Input);
        var instances = prompts.SelectMany(p => p.InstructionIds.Select((id, j) => (Id: id, p.Key,
            Check: InstructionRegistry.Create(id, new InstructionArgs(p.Kwargs[j], $"key {p.Key} {id}"), s)))).ToList();
        Assert.Equal(834, instances.Count);
        var bad = new List<string>();
        int checks = 0;
        foreach (var line in File.ReadLines(TestPaths.Fixtures("ifeval", "instruction_fuzz.jsonl")))
        {
            var e = JsonDocument.Parse(line).RootElement;
            var response = e.GetProperty("response").GetString()!;
            var bits = e.GetProperty("strict").GetString()!;
            for (int i = 0; i < instances.Count; i++, checks++)
            {
                bool got = PyUnicode.Strip(response).Length != 0 && instances[i].Check.CheckFollowing(response);
                if (got != (bits[i] == '1') && bad.Count < 20)
                    bad.Add($"{instances[i].Id} (key {instances[i].Key}) on {JsonSerializer.Serialize(response)}: {got}");
            }
        }
        Assert.Equal(150 * 834, checks);
        Assert.True(bad.Count == 0, string.Join("\n", bad));
    }
}
