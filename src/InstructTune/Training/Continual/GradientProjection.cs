namespace InstructTune.Training.Continual;

/// <summary>
/// The gradient projections of GEM and A-GEM over flat gradient vectors (double precision, no allocation beyond the Gram
/// matrix). With g the current gradient and g_k the reference gradients of the episodic memory:
/// <list type="bullet">
/// <item>A-GEM (Chaudhry et al. 2019, "Efficient Lifelong Learning with A-GEM", eq. 11): one reference gradient g_ref
/// (the memory of every earlier task together); if gᵀg_ref &lt; 0, g̃ = g − (gᵀg_ref / g_refᵀg_ref)·g_ref, else g̃ = g.</item>
/// <item>GEM (Lopez-Paz &amp; Ranzato 2017, eq. 10–13): g̃ = argmin ½‖g̃ − g‖² s.t. ⟨g̃, g_k⟩ ≥ 0 for every earlier task k. Its
/// dual is min_{v ≥ 0} ½vᵀGGᵀv + gᵀGᵀv and g̃ = g + Gᵀv. Solved exactly for the small number of tasks by the KKT
/// conditions over every active set S ⊆ {1..t} (2^t linear solves of size |S|; t ≤ 12 is refused above): v_S solves
/// (G_S G_Sᵀ) v_S = −G_S g, v_S ≥ 0, and every constraint holds for g̃ — the strictly convex problem has one such point.</item>
/// </list>
/// </summary>
public static class GradientProjection
{
    public const int MaxGemTasks = 12;

    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    /// <summary>A-GEM: projects <paramref name="g"/> in place when it conflicts with <paramref name="reference"/>; returns whether it did.</summary>
    public static bool AGem(Span<float> g, ReadOnlySpan<float> reference)
    {
        double dot = Dot(g, reference), norm = Dot(reference, reference);
        if (dot >= 0 || norm == 0) return false;
        double c = dot / norm;
        for (int i = 0; i < g.Length; i++) g[i] = (float)(g[i] - c * reference[i]);
        return true;
    }

    /// <summary>GEM: projects <paramref name="g"/> in place onto {x : ⟨x, g_k⟩ ≥ 0 ∀k}; returns the dual v (all 0 when no constraint binds).</summary>
    public static double[] Gem(Span<float> g, IReadOnlyList<float[]> references)
    {
        int t = references.Count;
        if (t > MaxGemTasks) throw new ArgumentException($"GEM solves its QP exactly for up to {MaxGemTasks} earlier tasks, got {t}");
        var gram = new double[t, t];
        var gg = new double[t];
        for (int a = 0; a < t; a++)
        {
            gg[a] = Dot(references[a], g);
            for (int b = 0; b <= a; b++) gram[a, b] = gram[b, a] = Dot(references[a], references[b]);
        }
        if (gg.All(x => x >= 0)) return new double[t];
        double[]? best = null;
        double bestObjective = double.PositiveInfinity;
        for (int mask = 1; mask < 1 << t; mask++)
        {
            var S = Enumerable.Range(0, t).Where(k => (mask >> k & 1) != 0).ToArray();
            var vS = Solve(S.Select(a => S.Select(b => gram[a, b]).ToArray()).ToArray(), S.Select(a => -gg[a]).ToArray());
            if (vS == null || vS.Any(x => x < -1e-12)) continue;
            var v = new double[t];
            for (int i = 0; i < S.Length; i++) v[S[i]] = Math.Max(0, vS[i]);
            // Primal feasibility: ⟨g + Gᵀv, g_k⟩ = gg_k + (GGᵀv)_k ≥ 0 for every k.
            bool feasible = true;
            for (int k = 0; k < t && feasible; k++)
            {
                double c = gg[k];
                for (int j = 0; j < t; j++) c += gram[k, j] * v[j];
                feasible = c >= -1e-9 * Math.Max(1, Math.Sqrt(gram[k, k]));
            }
            if (!feasible) continue;
            double objective = 0;   // the dual objective ½vᵀGGᵀv + gᵀGᵀv (the optimum is the smallest feasible KKT point)
            for (int a = 0; a < t; a++) { objective += gg[a] * v[a]; for (int b = 0; b < t; b++) objective += 0.5 * v[a] * gram[a, b] * v[b]; }
            if (objective < bestObjective) { bestObjective = objective; best = v; }
        }
        best ??= new double[t];
        for (int i = 0; i < g.Length; i++)
        {
            double x = g[i];
            for (int k = 0; k < t; k++) x += best[k] * references[k][i];
            g[i] = (float)x;
        }
        return best;
    }

    /// <summary>Gaussian elimination with partial pivoting; null when singular.</summary>
    private static double[]? Solve(double[][] A, double[] b)
    {
        int n = b.Length;
        var m = A.Select((row, i) => row.Append(b[i]).ToArray()).ToArray();
        for (int c = 0; c < n; c++)
        {
            int p = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(m[r][c]) > Math.Abs(m[p][c])) p = r;
            if (Math.Abs(m[p][c]) < 1e-30) return null;
            (m[c], m[p]) = (m[p], m[c]);
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue;
                double f = m[r][c] / m[c][c];
                for (int k = c; k <= n; k++) m[r][k] -= f * m[c][k];
            }
        }
        return Enumerable.Range(0, n).Select(i => m[i][n] / m[i][i]).ToArray();
    }
}
