using InstructTune.Data.Records;

namespace InstructTune.Data.Batching;

/// <summary>
/// Lays planned rows out as a <see cref="Batch"/>: documents back to back, position ids restarting at 0 per
/// document, document ids per token, right padding. Width is <c>fixedWidth</c> (packing) or the longest row.
/// </summary>
public static class Collator
{
    public static Batch Collate(IReadOnlyList<TokenizedExample> examples, PlannedBatch planned, int padId, int fixedWidth = 0)
    {
        int B = planned.Rows.Length;
        int T = fixedWidth > 0 ? fixedWidth : planned.Rows.Max(r => r.Sum(i => examples[i].Length));
        var ids = new int[B * T];
        var labels = new int[B * T];
        var pos = new int[B * T];
        var docs = new int[B * T];
        var segs = new byte[B * T];
        var tasks = new int[B * T];
        Array.Fill(ids, padId);
        Array.Fill(labels, TokenizedExample.IgnoreIndex);
        Array.Fill(docs, -1);
        Array.Fill(tasks, -1);
        for (int b = 0; b < B; b++)
        {
            int t = b * T, end = t + T;
            for (int d = 0; d < planned.Rows[b].Length; d++)
            {
                var e = examples[planned.Rows[b][d]];
                if (t + e.Length > end) throw new ArgumentException($"row {b} holds more than {T} tokens");
                e.Ids.CopyTo(ids, t);
                e.Labels.CopyTo(labels, t);
                e.Segments.CopyTo(segs, t);
                labels[t] = TokenizedExample.IgnoreIndex;   // never predicted from the previous document
                for (int k = 0; k < e.Length; k++) { pos[t + k] = k; docs[t + k] = d; tasks[t + k] = e.TaskId; }
                t += e.Length;
            }
        }
        return new Batch(B, T, ids, labels, pos, docs, segs, tasks, planned.Rows, padId);
    }
}
