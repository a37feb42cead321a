using System.Diagnostics;
using InstructTune.Engine.Tensors;

namespace InstructTune.Distributed;

/// <summary>
/// Sums the trainable parameters' gradients over all ranks (MPI_Allreduce, in place, in buckets of
/// <c>bucketFloats</c> values), together with a few step scalars (loss sums, token counts) riding in the last bucket.
/// Sum, not mean: every rank's micro-batch losses are already divided by the token count of the whole global
/// step, so the sum is exactly the one-process gradient (up to float summation order).
/// A parameter that got no gradient on any rank keeps Grad == null (AdamW then skips it, as in one process);
/// one flag per parameter travels with the buckets to decide that.
/// Frozen parameters (the LoRA/QLoRA base) are never in the list, so only what trains crosses the wire.
/// </summary>
public sealed class GradientReducer(ICommunicator comm, IReadOnlyList<Parameter> parameters, int bucketFloats)
{
    private readonly float[] _bucket = new float[Math.Max(1, Math.Min(bucketFloats, parameters.Sum(p => (long)p.Length) + parameters.Count + 64))];
    public double Seconds { get; private set; }

    /// <summary>Sums every parameter's gradient and <paramref name="scalars"/> over the ranks, in place.</summary>
    public void Reduce(Span<double> scalars)
    {
        if (comm.Size == 1) return;
        long start = Stopwatch.GetTimestamp();
        // Flags first (one float per parameter: 1 when this rank has a gradient), with the scalars in double.
        var flags = new double[parameters.Count + scalars.Length];
        for (int i = 0; i < parameters.Count; i++) flags[i] = parameters[i].Grad != null ? 1 : 0;
        scalars.CopyTo(flags.AsSpan(parameters.Count));
        comm.AllreduceSum(flags);
        flags.AsSpan(parameters.Count).CopyTo(scalars);

        // Buckets: consecutive gradients (or pieces of one) packed until the bucket is full.
        int fill = 0;
        var pending = new List<(Parameter P, int Offset, int Length, int At)>();
        for (int i = 0; i < parameters.Count; i++)
        {
            if (flags[i] == 0) continue;
            var p = parameters[i];
            var grad = p.EnsureGrad().Span;   // zeros where this rank had none but another had
            for (int offset = 0; offset < grad.Length;)
            {
                int n = Math.Min(grad.Length - offset, _bucket.Length - fill);
                grad.Slice(offset, n).CopyTo(_bucket.AsSpan(fill));
                pending.Add((p, offset, n, fill));
                fill += n; offset += n;
                if (fill == _bucket.Length) Flush();
            }
        }
        Flush();
        Seconds += Stopwatch.GetElapsedTime(start).TotalSeconds;

        void Flush()
        {
            if (fill == 0) return;
            comm.AllreduceSum(_bucket.AsSpan(0, fill));
            foreach (var (p, offset, n, at) in pending) _bucket.AsSpan(at, n).CopyTo(p.Grad!.Span.Slice(offset, n));
            pending.Clear();
            fill = 0;
        }
    }
}
