// Evol-Instruct (Xu et al. 2023, "WizardLM: Empowering Large Language Models to Follow Complex Instructions", §3).
// Each round evolves every instruction of the pool once, with one operation drawn (synth.seed) from
// synth.evol_operations:
//   in-depth — add_constraints, deepening, concretizing, increase_reasoning, complicate_input: the instruction is
//              rewritten into a harder version of itself (the new version replaces it in the pool);
//   breadth  — a new instruction on a rarer topic, inspired by an instruction drawn from the sparsest topic cluster
//              (spherical k-means over instruction embeddings, synth.evol_clusters), so in-breadth fills thin topics;
//              it starts a new lineage and the pool grows.
// Then the endpoint answers each evolved instruction, and the elimination rules of §3.3 discard failed evolutions:
//   copied_prompt_words  — the evolved text copies the rewriting prompt's own wording ("given prompt", "rewritten …");
//   no_information_gain  — the endpoint judges the evolved and the original instruction equal;
//   response_sorry       — the response contains "sorry" and is shorter than 80 words;
//   response_empty       — the response holds only punctuation and stop words;
//   response_too_short   — the response has fewer than synth.evol_min_response_words words.
// A failed evolution leaves its parent in the pool to be evolved again next round. Every record carries its lineage:
// id, parent_id, root_id, round, operation. Requests of one step go out together; answers are used in order.
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using InstructTune.Common;
using InstructTune.Data.Synth;
using InstructTune.Evaluation.Complexity;

namespace InstructTune.Recipes.Synth;

public sealed record EvolResult(List<SynthRecord> Evolved, List<SynthRecord> Eliminated, JsonArray Coverage);

public static partial class EvolInstructRecipe
{
    public const string Method = "evol-instruct";
    public static readonly string[] DepthOperations = ["add_constraints", "deepening", "concretizing", "increase_reasoning", "complicate_input"];
    public const string Breadth = "breadth";

    /// <summary>Wording of the rewriting prompts that must not leak into an evolved instruction.</summary>
    public static readonly string[] PromptWords =
        ["given prompt", "rewritten prompt", "given instruction", "rewritten instruction", "new instruction:", "#given", "#rewritten", "created prompt"];

    // A small English stop-word list (the response_empty rule: nothing but these and punctuation).
    private static readonly HashSet<string> StopWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "for", "with", "by", "from", "is", "are", "was",
        "were", "be", "been", "it", "this", "that", "these", "those", "i", "you", "he", "she", "we", "they", "me", "my", "your",
        "as", "so", "not", "no", "yes", "do", "does", "did", "have", "has", "had", "will", "would", "can", "could", "ok", "okay",
    };

    [GeneratedRegex(@"\bsorry\b", RegexOptions.IgnoreCase)]
    private static partial Regex Sorry();

    /// <summary>The response-side elimination rules; null = the response passes.</summary>
    public static string? RejectResponse(string response, int minWords)
    {
        var words = response.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (Sorry().IsMatch(response) && words.Length < 80) return "response_sorry";
        var content = Evaluation.Metrics.RougeTokenizer.Tokenize(response, false);
        if (content.All(StopWords.Contains)) return "response_empty";
        if (words.Length < minWords) return "response_too_short";
        return null;
    }

    /// <summary>The evolved-instruction rule: the rewriting prompt's wording copied into the result.</summary>
    public static bool CopiesPromptWords(string evolved) =>
        PromptWords.Any(w => evolved.Contains(w, StringComparison.OrdinalIgnoreCase));

    public static EvolResult Run(SynthRun run, IReadOnlyList<SynthRecord> data, ISynthEmbedder embedder, CancellationToken ct = default)
    {
        var cfg = run.Config;
        var ops = cfg.EvolOperations.Select(o => o.Trim().ToLowerInvariant()).ToList();
        foreach (var op in ops)
            if (op != Breadth && !DepthOperations.Contains(op))
                throw new InputException($"synth.evol_operations: unknown operation \"{op}\" (expected {string.Join(", ", DepthOperations)}, {Breadth})");
        if (ops.Count == 0) throw new InputException("synth.evol_operations: empty");
        var methods = run.Prompts.Entries("evol_methods");
        foreach (var op in ops.Where(o => o != Breadth))
            if (!methods.ContainsKey(op)) throw new InputException($"evol_methods template: no line for \"{op}\"");

        var f = run.Funnel;
        // The pool: the current version of every lineage (input rows start as their own roots).
        var pool = data.Select(r => new SynthRecord
        {
            Id = r.Id, Instruction = r.Input.Length > 0 ? r.Instruction + "\n\n" + r.Input : r.Instruction, Output = r.Output,
            Method = r.Method.Length > 0 ? r.Method : "input", RootId = r.RootId ?? r.Id, Round = 0,
        }).ToList();
        var evolved = new List<SynthRecord>();
        var eliminated = new List<SynthRecord>();
        var coverage = new JsonArray();
        int serial = 0, failedRounds = 0;
        run.Progress.WriteLine($"evol-instruct: {pool.Count} instructions, {cfg.EvolRounds} rounds, operations {string.Join(", ", ops)}");

        for (int round = 1; round <= cfg.EvolRounds; round++)
        {
            ct.ThrowIfCancellationRequested();
            // Topic clusters of the current pool: in-breadth parents come from the sparsest.
            var vectors = embedder.EmbedAsync(pool.Select(p => p.Instruction).ToList(), ct).GetAwaiter().GetResult();
            var assign = Clusters.KMeans(vectors, cfg.EvolClusters, run.Rng);
            var sizes = assign.GroupBy(a => a).ToDictionary(g => g.Key, g => g.Count());
            coverage.Add(new JsonObject { ["round"] = round, ["cluster_sizes"] = new JsonArray(sizes.OrderBy(k => k.Key).Select(k => (JsonNode)k.Value).ToArray()) });

            // 1. one operation per pool entry, one evolution request each
            var steps = new List<(SynthRecord Parent, string Op, int PoolIndex)>();
            var requests = new List<SynthRequest>();
            for (int i = 0; i < pool.Count; i++)
            {
                var op = ops[run.Rng.Next(ops.Count)];
                var parent = pool[i];
                string prompt;
                if (op == Breadth)
                {
                    int sparsest = sizes.OrderBy(k => k.Value).ThenBy(k => k.Key).First().Key;
                    var members = Enumerable.Range(0, pool.Count).Where(j => assign[j] == sparsest).ToList();
                    parent = pool[members[run.Rng.Next(members.Count)]];
                    prompt = run.Prompt("evol_breadth", run.Config.MaxTokens, ("instruction", parent.Instruction));
                }
                else prompt = run.Prompt("evol_depth", run.Config.MaxTokens, ("method", methods[op]), ("instruction", parent.Instruction));
                steps.Add((parent, op, i));
                requests.Add(run.Generate("evolve_" + op, prompt));
            }
            var evolvedText = run.Endpoint.CompleteAllAsync(requests, ct).GetAwaiter().GetResult();
            run.CheckEndpointAlive(evolvedText, ref failedRounds);
            f.Add("evolutions", steps.Count);

            // 2. instruction-side rules, then the equality judgement
            var candidates = new List<(int Step, SynthRecord Rec)>();
            for (int s = 0; s < steps.Count; s++)
            {
                var (parent, op, _) = steps[s];
                f.Add("op_" + op);
                var rec = new SynthRecord
                {
                    Id = $"evol-r{round}-{++serial:D5}", Instruction = (evolvedText[s].Text ?? "").Trim(), Method = Method, Operation = op,
                    ParentId = parent.Id, RootId = op == Breadth ? null : parent.RootId, Round = round,
                };
                rec.RootId ??= rec.Id;
                if (!evolvedText[s].Ok) { Eliminate(rec, "endpoint_error"); continue; }
                if (rec.Instruction.Length == 0) { Eliminate(rec, "empty_evolution"); continue; }
                if (CopiesPromptWords(rec.Instruction)) { Eliminate(rec, "copied_prompt_words"); continue; }
                candidates.Add((s, rec));
            }
            var equal = run.Endpoint.CompleteAllAsync(candidates.Select(c => SynthRun.Judge("equality",
                run.Prompt("evol_equal", SynthRun.JudgeMaxTokens, ("first", steps[c.Step].Parent.Instruction), ("second", c.Rec.Instruction)))).ToList(), ct).GetAwaiter().GetResult();
            var survivors = new List<(int Step, SynthRecord Rec)>();
            for (int i = 0; i < candidates.Count; i++)
            {
                if (!equal[i].Ok) { Eliminate(candidates[i].Rec, "endpoint_error"); continue; }
                if (equal[i].Text!.TrimStart().StartsWith("equal", StringComparison.OrdinalIgnoreCase)) { Eliminate(candidates[i].Rec, "no_information_gain"); continue; }
                survivors.Add(candidates[i]);
            }

            // 3. responses and the response-side rules
            var responses = run.Endpoint.CompleteAllAsync(survivors.Select(c => run.Generate("response", c.Rec.Instruction)).ToList(), ct).GetAwaiter().GetResult();
            for (int i = 0; i < survivors.Count; i++)
            {
                var (s, rec) = survivors[i];
                if (!responses[i].Ok) { Eliminate(rec, "endpoint_error"); continue; }
                rec.Output = responses[i].Text!.Trim();
                if (RejectResponse(rec.Output, cfg.EvolMinResponseWords) is { } why) { Eliminate(rec, why); continue; }
                rec.Complexity = SelfInstructRecipe.ComplexityName(ComplexityClassifier.Classify(rec.Instruction));
                evolved.Add(rec);
                f.Add("evolved_kept");
                if (steps[s].Op == Breadth) pool.Add(rec);          // a new lineage joins the pool
                else pool[steps[s].PoolIndex] = rec;                 // the harder version replaces its parent
            }
            run.Progress.WriteLine($"evol-instruct round {round}/{cfg.EvolRounds}: pool {pool.Count}, kept {evolved.Count}; {f.Line()}");
        }
        return new EvolResult(evolved, eliminated, coverage);

        void Eliminate(SynthRecord rec, string reason)
        {
            // The parent stays in the pool (nothing replaced it): it is evolved again next round.
            rec.Reasons.Add(reason);
            eliminated.Add(rec);
            f.Add("eliminated_" + reason);
        }
    }
}
