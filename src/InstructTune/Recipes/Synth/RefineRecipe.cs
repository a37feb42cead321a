// Quality control of generated instruction data (Self-Refine-style filtering; `itune synth refine`, and the last
// stage of self-instruct and evol-instruct while synth.refine is on). Per record:
//   coherence     cosine of the embeddings of instruction (+ input) and response    < reject_coherence rejects, < flag_coherence flags
//   alignment     the judge's IRS score 1–10 through the endpoint (Evaluation/Judge: JudgePrompts.Irs, JudgeAnswerParser)
//                                                                                     < reject_alignment rejects, < flag_alignment flags
//   contradiction the endpoint asked whether the response contradicts itself or the instruction (yes flags)
//   format        every synth.format_patterns regex must match the response (a miss flags)
//   reference     best cosine to the known-good examples of synth.reference            < reference_flag flags
//   complexity    simple / conditional / multi-step (Evaluation/Complexity) and a score 0/1/2; with synth.balance_ratio,
//                 accepted items of a level beyond ratio × the rarest level's count are flagged (complexity_balance)
// Any reject → rejected.jsonl; else any flag → review.jsonl (decided with `itune synth review`); else data.jsonl.
using System.Text.RegularExpressions;
using InstructTune.Common;
using InstructTune.Data.Synth;
using InstructTune.Evaluation.Complexity;
using InstructTune.Evaluation.Judge;

namespace InstructTune.Recipes.Synth;

public sealed record RefineResult(List<SynthRecord> Accepted, List<SynthRecord> Flagged, List<SynthRecord> Rejected);

public static class RefineRecipe
{
    public static RefineResult Run(SynthRun run, IReadOnlyList<SynthRecord> records, CancellationToken ct = default)
    {
        var cfg = run.Config;
        var f = run.Funnel;
        var patterns = cfg.FormatPatterns.Select((p, i) =>
        {
            try { return new Regex(p, RegexOptions.None, TimeSpan.FromSeconds(1)); }
            catch (ArgumentException ex) { throw new InputException($"synth.format_patterns[{i}]: not a valid regular expression ({ex.Message})"); }
        }).ToList();
        if (cfg.FlagCoherence < cfg.RejectCoherence) throw new InputException($"synth.flag_coherence ({cfg.FlagCoherence}) is below synth.reject_coherence ({cfg.RejectCoherence})");
        if (cfg.FlagAlignment < cfg.RejectAlignment) throw new InputException($"synth.flag_alignment ({cfg.FlagAlignment}) is below synth.reject_alignment ({cfg.RejectAlignment})");
        run.Progress.WriteLine($"refine: {records.Count} records, embeddings {run.Embedder.Name}");

        // Coherence and reference similarity.
        string Prompt(SynthRecord r) => r.Input.Length > 0 ? r.Instruction + "\n" + r.Input : r.Instruction;
        var promptVec = run.Embedder.EmbedAsync(records.Select(Prompt).ToList(), ct).GetAwaiter().GetResult();
        var outputVec = run.Embedder.EmbedAsync(records.Select(r => r.Output).ToList(), ct).GetAwaiter().GetResult();
        float[][] refVec = [];
        if (cfg.Reference.Length > 0)
        {
            var refs = SynthData.Read(cfg.Reference, requireOutput: true);
            refVec = run.Embedder.EmbedAsync(refs.Select(r => Prompt(r) + "\n" + r.Output).ToList(), ct).GetAwaiter().GetResult();
        }
        var allVec = refVec.Length > 0 ? run.Embedder.EmbedAsync(records.Select(r => Prompt(r) + "\n" + r.Output).ToList(), ct).GetAwaiter().GetResult() : [];

        // Alignment (IRS judge) and contradiction, through the endpoint.
        bool judgeAlignment = cfg.RejectAlignment > 0 || cfg.FlagAlignment > 0;
        var alignment = judgeAlignment
            ? run.Endpoint.CompleteAllAsync(records.Select(r => SynthRun.Judge("alignment", JudgePrompts.Irs(Prompt(r), r.Output, null), JudgePrompts.IrsSystem)).ToList(), ct,
                "synth.reject_alignment=0 synth.flag_alignment=0 turn the alignment judge off").GetAwaiter().GetResult()
            : [];
        var contradiction = cfg.CheckContradiction
            ? run.Endpoint.CompleteAllAsync(records.Select(r => SynthRun.Judge("contradiction",
                run.Prompt("refine_contradiction", SynthRun.JudgeMaxTokens, ("instruction", Prompt(r)), ("response", r.Output)))).ToList(), ct,
                "synth.check_contradiction=false turns this check off").GetAwaiter().GetResult()
            : [];

        var accepted = new List<SynthRecord>();
        var flagged = new List<SynthRecord>();
        var rejected = new List<SynthRecord>();
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            var rejects = new List<string>();
            var flags = new List<string>();
            double coherence = SynthEmbedders.Cosine(promptVec[i], outputVec[i]);
            r.Scores["coherence"] = coherence;
            if (coherence < cfg.RejectCoherence) rejects.Add("coherence"); else if (coherence < cfg.FlagCoherence) flags.Add("coherence");
            if (judgeAlignment)
            {
                if (!alignment[i].Ok) flags.Add("alignment_unjudged");
                else if (JudgeAnswerParser.ParseScore(alignment[i].Text!) is { } score)
                {
                    r.Scores["alignment"] = score;
                    if (score < cfg.RejectAlignment) rejects.Add("alignment"); else if (score < cfg.FlagAlignment) flags.Add("alignment");
                }
                else flags.Add("alignment_unparsed");
            }
            if (cfg.CheckContradiction)
            {
                if (!contradiction[i].Ok) flags.Add("contradiction_unjudged");
                else if (SelfInstructRules.IsYes(contradiction[i].Text!)) { flags.Add("contradiction"); r.Scores["contradiction"] = 1; }
                else r.Scores["contradiction"] = 0;
            }
            if (patterns.Any(p => !p.IsMatch(r.Output))) flags.Add("format");
            if (refVec.Length > 0)
            {
                double best = refVec.Max(v => SynthEmbedders.Cosine(v, allVec[i]));
                r.Scores["reference"] = best;
                if (best < cfg.ReferenceFlag) flags.Add("reference");
            }
            var level = ComplexityClassifier.Classify(r.Instruction);
            r.Complexity = SelfInstructRecipe.ComplexityName(level);
            r.Scores["complexity"] = (int)level;

            r.Reasons.AddRange(rejects.Count > 0 ? rejects : flags);
            (rejects.Count > 0 ? rejected : flags.Count > 0 ? flagged : accepted).Add(r);
            foreach (var x in rejects) f.Add("refine_rejected_" + x);
            if (rejects.Count == 0) foreach (var x in flags) f.Add("refine_flagged_" + x);
        }

        // Complexity balance: cap each level's accepted count at ratio × the rarest non-empty level; the surplus (latest
        // first) goes to review.
        if (cfg.BalanceRatio > 0)
        {
            var byLevel = accepted.GroupBy(r => r.Complexity!).ToDictionary(g => g.Key, g => g.ToList());
            int rarest = byLevel.Values.Min(l => l.Count);
            int cap = (int)Math.Max(1, Math.Floor(cfg.BalanceRatio * rarest));
            foreach (var (_, list) in byLevel.OrderBy(k => k.Key, StringComparer.Ordinal))
                foreach (var r in list.Skip(cap))
                {
                    accepted.Remove(r);
                    r.Reasons.Add("complexity_balance");
                    flagged.Add(r);
                    f.Add("refine_flagged_complexity_balance");
                }
        }
        f.Add("refine_accepted", accepted.Count);
        f.Add("refine_flagged", flagged.Count);
        f.Add("refine_rejected", rejected.Count);
        run.Progress.WriteLine($"refine: {accepted.Count} accepted, {flagged.Count} flagged for review, {rejected.Count} rejected");
        return new RefineResult(accepted, flagged, rejected);
    }
}
