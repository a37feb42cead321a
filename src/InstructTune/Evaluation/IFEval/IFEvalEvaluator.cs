using InstructTune.Evaluation.IFEval.Instructions;

namespace InstructTune.Evaluation.IFEval;

/// <summary>
/// IFEval's <c>evaluation_lib</c>: strict mode checks each instruction on the response as given; loose mode
/// passes an instruction if any of eight variants passes (the response, without its first line, without its
/// last line, without both — each stripped — and each of those four with every '*' removed). A blank variant
/// never passes.
/// </summary>
public sealed class IFEvalEvaluator(IFEvalServices services)
{
    /// <summary>Binds every prompt's instructions; all kwargs problems are reported together.</summary>
    public List<IInstruction[]> Bind(IReadOnlyList<IFEvalPrompt> prompts, string inputPath)
    {
        var problems = new List<string>();
        var bound = new List<IInstruction[]>(prompts.Count);
        foreach (var p in prompts)
        {
            var list = new IInstruction[p.InstructionIds.Count];
            for (int i = 0; i < list.Length; i++)
            {
                var args = new InstructionArgs(p.Kwargs[i], $"{inputPath}:{p.Line} (key {p.Key}) {p.InstructionIds[i]}");
                try { list[i] = InstructionRegistry.Create(p.InstructionIds[i], args, services); }
                catch (InstructionArgumentException e) { problems.Add(e.Message); }
            }
            bound.Add(list);
        }
        if (problems.Count > 0) throw new IFEvalInputException(problems);
        return bound;
    }

    /// <summary>Evaluates every prompt in both modes, in input order (prompts are independent, so run in parallel).</summary>
    public (IFEvalResult[] Strict, IFEvalResult[] Loose) Evaluate(IReadOnlyList<IFEvalPrompt> prompts,
        IReadOnlyDictionary<string, string> responses, string inputPath = "input_data.jsonl")
    {
        // Like evaluation_lib, each mode builds its own instructions (all strict ones first): the 2023 rules draw then.
        services.ResetRuleRandom();
        var boundStrict = Bind(prompts, inputPath);
        var boundLoose = services.Rules == IFEvalRules.Upstream ? boundStrict : Bind(prompts, inputPath);
        var strict = new IFEvalResult[prompts.Count];
        var loose = new IFEvalResult[prompts.Count];
        Parallel.For(0, prompts.Count, i =>
        {
            var response = responses[prompts[i].Prompt];
            strict[i] = Result(prompts[i], response, boundStrict[i].Select(ins => Follows(ins, [response])).ToList());
            var variants = LooseVariants(response);
            loose[i] = Result(prompts[i], response, boundLoose[i].Select(ins => Follows(ins, variants)).ToList());
        });
        return (strict, loose);
    }

    private static IFEvalResult Result(IFEvalPrompt p, string response, List<bool> follows) =>
        new(p.InstructionIds, p.Prompt, response, follows.All(f => f), follows);

    private static bool Follows(IInstruction instruction, IReadOnlyList<string> variants) =>
        variants.Any(r => Text.PyUnicode.Strip(r).Length != 0 && instruction.CheckFollowing(r));

    /// <summary>The eight loose-mode variants, in evaluation_lib's order.</summary>
    public static string[] LooseVariants(string response)
    {
        var r = response.Split('\n');
        string Join(int from, int toExclusive) =>
            Text.PyUnicode.Strip(string.Join('\n', r[Math.Min(from, r.Length)..Math.Max(Math.Min(from, r.Length), toExclusive)]));
        var removeFirst = Join(1, r.Length);
        var removeLast = Join(0, r.Length - 1);
        var removeBoth = Join(1, r.Length - 1);
        return
        [
            response, response.Replace("*", ""),
            removeFirst, removeLast, removeBoth,
            removeFirst.Replace("*", ""), removeLast.Replace("*", ""), removeBoth.Replace("*", ""),
        ];
    }
}
