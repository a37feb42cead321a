using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Training.Regularizers;

namespace InstructTune.Peft.Iasft;

/// <summary>
/// IaSFT's two steps before training: the diagonal Fisher of the targeted weight matrices and its top-k.
/// Fisher: F = (1/N)·Σ_batches g⊙g with g = ∂L/∂W of one batch's mean response loss (the empirical Fisher EWC uses,
/// <see cref="EwcRegularizer.EstimateFisher"/>), at the base weights. Top-k: k = ⌈fraction·n⌉ (at least 1) entries
/// per tensor (n its size) or over all targeted tensors together (n their total); an entry is kept when F is above
/// the k-th largest value t, and entries with F = t fill the remaining places in order (tensor order, then flat
/// index), so the mask is exactly the top-k with a fixed tie rule.
/// </summary>
public static class IasftSelection
{
    /// <summary>The targeted Linear layers of the model, in module order.</summary>
    public static IReadOnlyList<(string Name, Linear Layer)> Targets(Module model, IasftConfig config)
    {
        var found = model.NamedModules().Where(m => m.Module is Linear && config.Targets(m.Name)).Select(m => (m.Name, (Linear)m.Module)).ToList();
        foreach (var (name, _) in found)
            if (!System.Text.RegularExpressions.Regex.IsMatch(name, @"^model\.layers\.\d+\.(self_attn|mlp)\."))
                throw new ArgumentException($"'{name}' is not a projection of a decoder layer (q/k/v/o_proj, gate/up/down_proj); IaSFT deltas live there only");
        if (found.Count == 0)
            throw new ArgumentException($"target_modules [{string.Join(", ", config.TargetModules)}] match no Linear layer of the model");
        return found;
    }

    /// <summary>
    /// Estimates the diagonal Fisher of each target's weight: <paramref name="backward"/> must leave batch b's loss
    /// gradient in the weights' Grad. Only the targets' weights get gradients meanwhile; every other parameter's
    /// Frozen state is kept. Refuses a Fisher that is not finite, naming the tensor.
    /// </summary>
    public static float[][] EstimateFisher(Module model, IReadOnlyList<(string Name, Linear Layer)> targets, int batches, Action<int> backward)
    {
        var all = model.NamedParameters().Select(p => p.Parameter).ToList();
        var frozenBefore = all.Select(p => p.Frozen).ToList();
        try
        {
            foreach (var p in all) p.Frozen = true;
            var weights = targets.Select(t => t.Layer.Weight).ToList();
            foreach (var w in weights) w.Frozen = false;
            var fisher = EwcRegularizer.EstimateFisher(weights, batches, backward);
            for (int i = 0; i < fisher.Length; i++)
                if (fisher[i].Any(f => !float.IsFinite(f)))
                    throw new InvalidDataException($"the Fisher of {targets[i].Name}.weight is not finite: the response loss diverged at the base weights");
            return fisher;
        }
        finally
        {
            for (int i = 0; i < all.Count; i++) all[i].Frozen = frozenBefore[i];
        }
    }

    /// <summary>k for n entries: ⌈fraction·n⌉, at least 1, at most n.</summary>
    public static int K(double fraction, long n) => (int)Math.Clamp((long)Math.Ceiling(fraction * n - 1e-9), 1, n);

    /// <summary>The selected flat indices of each tensor (ascending; empty when a tensor gets none in global mode).</summary>
    public static int[][] Select(IReadOnlyList<float[]> fisher, double fraction, FisherSelection selection)
    {
        if (fraction is not (> 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), $"fraction {fraction} must be in (0, 1]");
        if (selection == FisherSelection.PerTensor) return fisher.Select(f => TopK([f], K(fraction, f.Length))[0]).ToArray();
        return TopK(fisher, K(fraction, fisher.Sum(f => (long)f.Length)));
    }

    /// <summary>The k largest values over the tensors in order, ties at the threshold filled in (tensor, index) order.</summary>
    public static int[][] TopK(IReadOnlyList<float[]> fisher, int k)
    {
        long n = fisher.Sum(f => (long)f.Length);
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"k {k} is outside 1..{n}");
        var all = new float[n];
        long o = 0;
        foreach (var f in fisher) { f.CopyTo(all, o); o += f.Length; }
        Array.Sort(all);
        float t = all[n - k];                                                        // the k-th largest value
        long above = n - k; while (above < n && all[above] == t) above++;
        int ties = k - (int)(n - above);                                             // places left for entries equal to t
        var result = new int[fisher.Count][];
        for (int i = 0; i < fisher.Count; i++)
        {
            var f = fisher[i]; var picked = new List<int>();
            for (int j = 0; j < f.Length; j++)
                if (f[j] > t || (f[j] == t && ties-- > 0)) picked.Add(j);
            result[i] = picked.ToArray();
        }
        return result;
    }
}
