// A sparse weight delta S (N, K) of k entries applied beside a dense product: Y (M, N) += X (M, K) · Sᵀ, with
// S[index[j] / K, index[j] % K] = v[j]. IaSFT (Fisher-sparse tuning) trains v; the inference path adds the same
// term. Cost M·k in each direction (k ≪ N·K), no dense N×K buffer.
//   forward:  Y[m, r_j] += X[m, c_j] · v[j]
//   backward: dX[m, c_j] += dY[m, r_j] · v[j];   dv[j] += Σ_m dY[m, r_j] · X[m, c_j]
// index holds flat row-major positions (r·K + c), each in [0, N·K); duplicates are allowed (their terms add).
namespace InstructTune.Engine.Kernels;

public static class SparseDeltaKernel
{
    /// <summary>Y (M, N) += X (M, K) · Sᵀ. Throws when a buffer is too short or an index is out of range.</summary>
    public static void Forward(ReadOnlySpan<float> X, ReadOnlySpan<int> index, ReadOnlySpan<float> v, Span<float> Y, int M, int N, int K)
    {
        Check(X.Length, Y.Length, index, v.Length, M, N, K);
        for (int m = 0; m < M; m++)
        {
            var x = X.Slice(m * K, K); var y = Y.Slice(m * N, N);
            for (int j = 0; j < index.Length; j++)
            {
                int r = index[j] / K, c = index[j] - r * K;
                y[r] += x[c] * v[j];                                          // Y[m, r_j] += X[m, c_j]·v_j
            }
        }
    }

    /// <summary>Accumulates dX (M, K) (when non-empty) and dv (k) (when non-empty) from dY (M, N).</summary>
    public static void Backward(ReadOnlySpan<float> X, ReadOnlySpan<int> index, ReadOnlySpan<float> v, ReadOnlySpan<float> dY,
        Span<float> dX, Span<float> dv, int M, int N, int K)
    {
        Check(X.Length, dY.Length, index, v.Length, M, N, K);
        if (!dX.IsEmpty && dX.Length < M * K) throw new ArgumentException($"SparseDeltaKernel: dX has {dX.Length} values, needs {M * K}");
        if (!dv.IsEmpty && dv.Length < index.Length) throw new ArgumentException($"SparseDeltaKernel: dv has {dv.Length} values, needs {index.Length}");
        for (int j = 0; j < index.Length; j++)
        {
            int r = index[j] / K, c = index[j] - r * K;
            double acc = 0;
            for (int m = 0; m < M; m++)
            {
                float g = dY[m * N + r];
                if (!dX.IsEmpty) dX[m * K + c] += g * v[j];                  // dX[m, c_j] += dY[m, r_j]·v_j
                acc += (double)g * X[m * K + c];                             // dv_j += Σ_m dY[m, r_j]·X[m, c_j]
            }
            if (!dv.IsEmpty) dv[j] += (float)acc;
        }
    }

    private static void Check(int xLen, int yLen, ReadOnlySpan<int> index, int vLen, int M, int N, int K)
    {
        if (xLen < (long)M * K) throw new ArgumentException($"SparseDeltaKernel: X has {xLen} values, needs M·K = {(long)M * K}");
        if (yLen < (long)M * N) throw new ArgumentException($"SparseDeltaKernel: Y has {yLen} values, needs M·N = {(long)M * N}");
        if (vLen != index.Length) throw new ArgumentException($"SparseDeltaKernel: {index.Length} indices but {vLen} values");
        long size = (long)N * K;
        foreach (var i in index)
            if (i < 0 || i >= size) throw new ArgumentException($"SparseDeltaKernel: index {i} outside the {N}×{K} matrix");
    }
}
