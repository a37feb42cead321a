using InstructTune.Evaluation.IFEval;

namespace InstructTune.Tests.Evaluation.IFEval;

/// <summary>
/// The GPT-4 responses published with IFEval against the paper's figures (Zhou et al. 2023: strict prompt 76.89 %,
/// strict instruction 83.57 %, loose prompt 79.30 %, loose instruction 85.37 %).
/// </summary>
/// <remarks>
/// Under today's upstream rules every check on this file is deterministic (langdetect gives the same answer for
/// all GPT-4 responses over 40 seeds) and the result is 417/541, 698/834, 431/541, 714/834 — the same as the
/// reference script with the genuine libraries, and the same as the official code's own output stored in
/// Podtech-AI/IFEval data/test_output (equal file lengths, strict; loose differs by the one random draw below).
/// The paper's run used the 2023 release of <c>LetterFrequencyChecker</c>, which replaced a <c>letter</c> that is not a
/// single ASCII letter with <c>random.choice(string.ascii_letters)</c> (unseeded). Two prompts have such letters:
/// key 1122 ('#', at least 4) and key 1129 ('!', at least 6). The published figures are exactly our results with
/// the random letter missing for 1122 in both modes and for 1129 in loose mode; the test checks that this is the
/// only difference and that both outcomes are draws the 2023 rule can make.
/// </remarks>
public class IFEvalPublishedFiguresTests
{
    private const string Letter = "keywords:letter_frequency";

    [Fact]
    public void Gpt4_UpstreamRules_Counts()
    {
        var s = Run().Summary;
        Assert.Equal((541, 834), (s.Strict.Prompts, s.Strict.Instructions));
        Assert.Equal(417, (int)Math.Round(s.Strict.PromptLevel * 541));
        Assert.Equal(698, (int)Math.Round(s.Strict.InstructionLevel * 834));
        Assert.Equal(431, (int)Math.Round(s.Loose.PromptLevel * 541));
        Assert.Equal(714, (int)Math.Round(s.Loose.InstructionLevel * 834));
    }

    [Fact]
    public void Gpt4_WithThe2023RandomLetterDraws_EqualsPublishedFigures()
    {
        var run = Run();
        var prompts = IFEvalReader.ReadPrompts(IFEvalSharedData.Input);
        var responses = IFEvalReader.ReadResponses(IFEvalSharedData.Responses(IFEvalSharedData.Gpt4), prompts, IFEvalSharedData.Input);

        // The two instructions whose letter is not an ASCII letter; each must be attainable as a failure under the 2023 rule.
        var strict = Redraw(prompts, run.Strict, responses, new() { [1122] = false });
        var loose = Redraw(prompts, run.Loose, responses, new() { [1122] = false, [1129] = false });

        var s = new IFEvalSummary(IFEvalAccuracy.Of(strict), IFEvalAccuracy.Of(loose));
        Assert.Equal(76.89, Math.Round(s.Strict.PromptLevel * 100, 2));
        Assert.Equal(83.57, Math.Round(s.Strict.InstructionLevel * 100, 2));
        Assert.Equal(79.30, Math.Round(s.Loose.PromptLevel * 100, 2));
        Assert.Equal(85.37, Math.Round(s.Loose.InstructionLevel * 100, 2));
    }

    /// <summary>
    /// The 2023 rule itself, with CPython's generator seeded: seed 51 is the first seed whose
    /// <c>random.choice(string.ascii_letters)</c> draws (p, g, j, k — strict 1122, strict 1129, loose 1122, loose 1129)
    /// give the published outcome (81 of the first 2000 seeds do, as checked with Python); seed 0 draws (y, W, A, c),
    /// which all pass, giving the upstream figures.
    /// </summary>
    [Theory]
    [InlineData(51UL, 76.89, 83.57, 79.30, 85.37)]
    [InlineData(0UL, 77.08, 83.69, 79.67, 85.61)]
    public void Gpt4_Release2023Rules_Seeded(ulong ruleSeed, double sp, double si, double lp, double li)
    {
        var shared = IFEvalSharedData.Services;
        var services = new IFEvalServices(shared.Sentences, shared.Language) { Rules = IFEvalRules.Release2023, RuleSeed = ruleSeed };
        var s = IFEvalRun.Run(IFEvalSharedData.Input, IFEvalSharedData.Responses(IFEvalSharedData.Gpt4), services).Summary;
        Assert.Equal((sp, si, lp, li), (Math.Round(s.Strict.PromptLevel * 100, 2), Math.Round(s.Strict.InstructionLevel * 100, 2),
            Math.Round(s.Loose.PromptLevel * 100, 2), Math.Round(s.Loose.InstructionLevel * 100, 2)));
    }

    private static IFEvalRun.Output Run() =>
        IFEvalRun.Run(IFEvalSharedData.Input, IFEvalSharedData.Responses(IFEvalSharedData.Gpt4), IFEvalSharedData.Services);

    /// <summary>Replaces the letter-frequency outcome of the given keys, after checking the key really has a non-letter letter
    /// and that some ASCII letter fails the count on the response (so the 2023 rule could have drawn that outcome).</summary>
    private static List<IFEvalResult> Redraw(List<IFEvalPrompt> prompts, IFEvalResult[] results,
        Dictionary<string, string> responses, Dictionary<long, bool> outcome)
    {
        var list = results.ToList();
        foreach (var (key, follows) in outcome)
        {
            int i = prompts.FindIndex(p => p.Key == key);
            int j = prompts[i].InstructionIds.ToList().IndexOf(Letter);
            var kw = prompts[i].Kwargs[j];
            var letter = kw.GetProperty("letter").GetString()!;
            Assert.False(letter.Length == 1 && char.IsAsciiLetter(letter[0]), $"key {key} has an ASCII letter");
            Assert.True(list[i].FollowInstructionList[j], $"key {key}: upstream rule should pass");
            long threshold = kw.GetProperty("let_frequency").GetInt64();
            var lower = responses[prompts[i].Prompt].ToLowerInvariant();
            Assert.Contains("abcdefghijklmnopqrstuvwxyz", c => lower.Count(x => x == c) < threshold);

            var flags = list[i].FollowInstructionList.ToArray();
            flags[j] = follows;
            list[i] = list[i] with { FollowInstructionList = flags, FollowAllInstructions = flags.All(f => f) };
        }
        return list;
    }
}
