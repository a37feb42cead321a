using InstructTune.Data.Records;
using InstructTune.Data.Templating;

namespace InstructTune.Data.Augmentation;

/// <summary>Replace instruction tokens by a mask token, or drop them.</summary>
public enum MaskMode { Replace, Drop }

/// <summary>
/// Instruction masking (as in instruction-robustness augmentation): each token whose segment is
/// <see cref="Segment.Instruction"/> is, with probability p, replaced by <c>maskTokenId</c> or dropped. Template,
/// input and response tokens are never touched, so labels and the response stay exactly as they were.
/// </summary>
public static class InstructionMasking
{
    public static TokenizedExample Apply(TokenizedExample e, double p, MaskMode mode, int maskTokenId, Random rng)
    {
        var ids = new List<int>(e.Length);
        var labels = new List<int>(e.Length);
        var segs = new List<byte>(e.Length);
        for (int t = 0; t < e.Length; t++)
        {
            bool hit = e.Segments[t] == (byte)Segment.Instruction && rng.NextDouble() < p;
            if (hit && mode == MaskMode.Drop) continue;
            ids.Add(hit ? maskTokenId : e.Ids[t]);
            labels.Add(e.Labels[t]);
            segs.Add(e.Segments[t]);
        }
        return e with { Ids = [.. ids], Labels = [.. labels], Segments = [.. segs] };
    }
}
