using InstructTune.Evaluation.Fidelity;
using InstructTune.Evaluation.Generalization;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.MultiTurn;
using InstructTune.Evaluation.Robustness;

namespace InstructTune.Evaluation.Suites;

/// <summary>
/// The evaluate recipe: runs every part of a suite through one generator (and optionally an LLM judge on the
/// instruction outputs) and returns <see cref="EvaluationResults"/> for <see cref="EvaluationReport.Write"/>.
/// Scores: ROUGE-L F against references where a task has them, else the share of extracted constraints kept;
/// generalization uses ROUGE-L against the gold output.
/// </summary>
public static class SuiteRunner
{
    public static async Task<EvaluationResults> RunAsync(EvalSuite suite, ITextGenerator generator, LlmJudge? judge = null,
        CancellationToken ct = default)
    {
        IReadOnlyList<InstructionResult>? instr = null;
        if (suite.Instructions.Count > 0) instr = InstructionEvaluator.Evaluate(suite.Instructions, generator);

        RobustnessResult? robustness = null;
        if (suite.Robustness.Count > 0)
            robustness = RobustnessEvaluator.Evaluate(suite.Robustness.Select(t => new RobustnessTask(t.Id,
                t.Phrasings is { Count: > 0 } given ? given : ParaphraseGenerator.Generate(t.Instruction, suite.Phrasings, suite.Seed),
                ScoreFor(t.Instruction, t.References))).ToList(), generator);

        GeneralizationResult? gen = null;
        if (suite.Generalization is { } g)
        {
            var heldOut = g.HeldOutTasks is { Count: > 0 } listed ? listed.ToHashSet()
                : TaskClusterer.HoldOutClusters(TaskClusterer.Cluster(g.Eval), g.HeldOutFraction, suite.Seed);
            // Held-out tasks must not leak into the training split used for shots.
            var train = g.Train.Where(e => !heldOut.Contains(e.TaskId)).ToList();
            gen = GeneralizationEvaluator.Evaluate(train, g.Eval, heldOut, generator,
                (o, gold) => Rouge.Score(gold, o).RougeL.FMeasure, g.Shots, suite.Seed);
        }

        MultiTurnResult? multi = suite.Conversations.Count > 0 ? MultiTurnEvaluator.Evaluate(suite.Conversations, generator) : null;

        JudgeSummary? judged = null;
        if (judge is not null && instr is not null)
        {
            var irs = await judge.JudgeIrsAsync(instr.Select((r, i) => new IrsItem(r.Id, suite.Instructions[i].Instruction, r.Output,
                suite.Instructions[i].References.FirstOrDefault())).ToList(), ct);
            judged = JudgeSummary.From(irs);
            // Every metric per level, the judge's too: IRS mapped from 1–10 onto 0–1 beside the other scores.
            instr = instr.Select((r, i) => irs[i].Score is { } score
                ? r with { Metrics = new Dictionary<string, double>(r.Metrics) { ["irs"] = (score - 1) / 9 } }
                : r).ToList();
        }

        return new EvaluationResults
        {
            Title = $"Evaluation: {suite.Name}",
            PerLevel = instr is null ? null : InstructionEvaluator.ByLevel(instr),
            Fidelity = instr is null ? null : InstructionEvaluator.ByConstraintKind(instr),
            Robustness = robustness,
            Generalization = gen,
            MultiTurn = multi,
            Judge = judged,
        };
    }

    private static Func<string, double> ScoreFor(string instruction, IReadOnlyList<string>? references)
    {
        if (references is { Count: > 0 }) return o => Rouge.ScoreMulti(references, o).RougeL.FMeasure;
        var constraints = ConstraintExtractor.Extract(instruction);
        return o => constraints.Count == 0 ? 1 : FidelityChecker.Check(constraints, o).Count(c => c.Kept) / (double)constraints.Count;
    }
}
