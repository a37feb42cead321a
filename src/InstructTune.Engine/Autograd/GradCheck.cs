// Finite-difference gradient checker for tests. The scalar probed is L = Σ_i w_i·f(x)_i with fixed random
// weights w (so every output element matters), summed in double; the numeric derivative is the central
// difference (L(x+ε) − L(x−ε)) / 2ε in double. f itself runs in float32, so ε must be large enough that float
// rounding (~1e-7·|L|/ε) stays below the tolerance: ε = 1e-3 … 1e-2 on unit-scale inputs.
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Autograd;

public static class GradCheck
{
    public sealed record Result(double MaxError, int Input, int Index, double Analytic, double Numeric, int Checked)
    {
        public override string ToString() => $"max error {MaxError:g3} at input {Input}[{Index}]: analytic {Analytic:g6} vs numeric {Numeric:g6} ({Checked} elements checked)";
    }

    /// <summary>
    /// Compares autograd with central differences for every element (or a random sample of maxPerInput) of each
    /// input that requires grad. Error = |a − n| / max(|a|, |n|, floor).
    /// </summary>
    public static Result Check(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-3, int maxPerInput = 64, double floor = 1e-2, ulong seed = 7)
    {
        var rng = new Rng(seed);
        var y0 = f(inputs);
        var w = new float[y0.Length];
        rng.Uniform(w, -1, 1);
        foreach (var x in inputs) x.Grad = null;
        using (var tape = Tape.Record())
        {
            var y = f(inputs);
            tape.Backward(y, Tensor.FromArray((float[])w.Clone(), y.Shape));
            foreach (var x in inputs) if (x.Grad != null) x.Grad = x.Grad.ToHeap();
        }
        double worst = 0; int wi = -1, wk = -1, n = 0; double wa = 0, wn = 0;
        for (int i = 0; i < inputs.Length; i++)
        {
            var x = inputs[i];
            if (!x.RequiresGrad) continue;
            var xs = x.Span;
            var analytic = x.Grad?.ToArray() ?? new float[x.Length];
            var idx = Enumerable.Range(0, x.Length).ToArray();
            if (idx.Length > maxPerInput) { Shuffle(idx, rng); idx = idx[..maxPerInput]; }
            foreach (var k in idx)
            {
                float orig = xs[k];
                xs[k] = (float)(orig + eps); double lp = Probe(f, inputs, w);
                xs[k] = (float)(orig - eps); double lm = Probe(f, inputs, w);
                double h = (double)(float)(orig + eps) - (float)(orig - eps); // the step actually taken in float32
                xs[k] = orig;
                double num = (lp - lm) / h, a = analytic[k];
                double err = Math.Abs(a - num) / Math.Max(Math.Max(Math.Abs(a), Math.Abs(num)), floor);
                n++;
                if (err > worst || wi < 0) { worst = err; wi = i; wk = k; wa = a; wn = num; }
            }
        }
        return new Result(worst, wi, wk, wa, wn, n);
    }

    private static double Probe(Func<Tensor[], Tensor> f, Tensor[] inputs, float[] w)
    {
        using var _ = Tape.NoGrad();
        var y = f(inputs).ToArray();
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += (double)w[i] * y[i];
        return s;
    }

    private static void Shuffle(int[] a, Rng rng)
    {
        for (int i = a.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (a[i], a[j]) = (a[j], a[i]); }
    }
}
