// Cross-entropy fused with log-softmax, per row, with ignore index and label smoothing ε (torch semantics):
//   lse[n] = max + log Σ exp(x[n] − max)
//   loss[n] = lse − (1−ε)·x[n, t] − ε·mean(x[n])          (= (1−ε)·nll + ε·mean_j(−log p_j))
//   loss[n] = 0 where t = ignoreIndex.
// Backward: dx[n, j] += dloss[n]·(p_j − (1−ε)·[j = t] − ε/V) (nothing for ignored rows).
// logits (N, V); targets (N); losses, lse (N).
using System.Buffers;
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

public static unsafe class CrossEntropyKernel
{
    public const int IgnoreIndex = -100;

    /// <summary>Per-row losses (0 for ignored rows); returns the number of rows that count.</summary>
    public static int Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, Span<float> lse,
        int N, int V, float smoothing = 0f, int ignoreIndex = IgnoreIndex)
    {
        Check("CrossEntropy.Forward", logits.Length, targets, losses.Length, lse.Length, N, V, ignoreIndex);
        int count = 0;
        for (int n = 0; n < N; n++) if (targets[n] != ignoreIndex) count++;
        fixed (float* px = logits, pl = losses, plse = lse)
        fixed (int* pt = targets)
        {
            float* X = px, L = pl, LSE = plse; int* Tg = pt;
            Parallel2.For(N, 4L * V, (s, e) =>
            {
                var tmp = ArrayPool<float>.Shared.Rent(V);
                for (int n = s; n < e; n++)
                {
                    var row = new ReadOnlySpan<float>(X + (long)n * V, V);
                    int t = Tg[n];
                    if (t == ignoreIndex) { L[n] = 0; LSE[n] = 0; continue; }
                    float m = TensorPrimitives.Max(row);
                    var ex = tmp.AsSpan(0, V);
                    TensorPrimitives.Subtract(row, m, ex);
                    VectorMath.Exp(ex, ex);
                    float l = m + MathF.Log(TensorPrimitives.Sum(ex));
                    LSE[n] = l;
                    float loss = l - (1f - smoothing) * row[t];
                    if (smoothing != 0f) loss -= smoothing * (TensorPrimitives.Sum(row) / V);
                    L[n] = loss;
                }
                ArrayPool<float>.Shared.Return(tmp);
            });
        }
        return count;
    }

    /// <summary>dlogits += dloss[n]·(softmax − (1−ε)·onehot − ε/V); rows with the ignore index get nothing.</summary>
    public static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> lse, ReadOnlySpan<float> dlosses,
        Span<float> dlogits, int N, int V, float smoothing = 0f, int ignoreIndex = IgnoreIndex)
    {
        Check("CrossEntropy.Backward", logits.Length, targets, dlosses.Length, lse.Length, N, V, ignoreIndex);
        KernelChecks.Len("CrossEntropy.Backward", "dlogits", dlogits.Length, (long)N * V);
        fixed (float* px = logits, plse = lse, pdl = dlosses, pdx = dlogits)
        fixed (int* pt = targets)
        {
            float* X = px, LSE = plse, DL = pdl, DX = pdx; int* Tg = pt;
            Parallel2.For(N, 4L * V, (s, e) =>
            {
                var tmp = ArrayPool<float>.Shared.Rent(V);
                for (int n = s; n < e; n++)
                {
                    int t = Tg[n];
                    if (t == ignoreIndex) continue;
                    float g = DL[n];
                    var row = new ReadOnlySpan<float>(X + (long)n * V, V);
                    var drow = new Span<float>(DX + (long)n * V, V);
                    var p = tmp.AsSpan(0, V);
                    TensorPrimitives.Subtract(row, LSE[n], p);
                    VectorMath.Exp(p, p);                     // p = softmax(row)
                    if (smoothing != 0f) TensorPrimitives.Subtract(p, smoothing / V, p);
                    p[t] -= 1f - smoothing;
                    TensorPrimitives.MultiplyAdd(p, g, drow, drow);
                }
                ArrayPool<float>.Shared.Return(tmp);
            });
        }
    }

    /// <summary>The definition in double precision (test oracle).</summary>
    public static int ForwardNaive(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> losses, Span<float> lse,
        int N, int V, float smoothing = 0f, int ignoreIndex = IgnoreIndex)
    {
        int count = 0;
        for (int n = 0; n < N; n++)
        {
            if (targets[n] == ignoreIndex) { losses[n] = 0; lse[n] = 0; continue; }
            count++;
            double m = double.NegativeInfinity, s = 0, sum = 0;
            for (int j = 0; j < V; j++) m = Math.Max(m, logits[n * V + j]);
            for (int j = 0; j < V; j++) { s += Math.Exp(logits[n * V + j] - m); sum += logits[n * V + j]; }
            double l = m + Math.Log(s);
            lse[n] = (float)l;
            losses[n] = (float)(l - (1 - smoothing) * logits[n * V + targets[n]] - smoothing * sum / V);
        }
        return count;
    }

    public static void BackwardNaive(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> lse, ReadOnlySpan<float> dlosses,
        Span<float> dlogits, int N, int V, float smoothing = 0f, int ignoreIndex = IgnoreIndex)
    {
        for (int n = 0; n < N; n++)
        {
            if (targets[n] == ignoreIndex) continue;
            for (int j = 0; j < V; j++)
            {
                double p = Math.Exp(logits[n * V + j] - (double)lse[n]);
                double d = p - smoothing / (double)V - (j == targets[n] ? 1 - smoothing : 0);
                dlogits[n * V + j] += (float)(dlosses[n] * d);
            }
        }
    }

    private static void Check(string k, int xLen, ReadOnlySpan<int> targets, int lLen, int lseLen, int N, int V, int ignoreIndex)
    {
        KernelChecks.Len(k, "logits", xLen, (long)N * V);
        KernelChecks.Len(k, "targets", targets.Length, N);
        KernelChecks.Len(k, "losses", lLen, N);
        KernelChecks.Len(k, "lse", lseLen, N);
        for (int n = 0; n < N; n++)
            if (targets[n] != ignoreIndex && (uint)targets[n] >= (uint)V)
                throw new ArgumentOutOfRangeException(nameof(targets), $"{k}: target {targets[n]} at row {n} is outside [0, {V}) and is not the ignore index {ignoreIndex}");
    }
}
