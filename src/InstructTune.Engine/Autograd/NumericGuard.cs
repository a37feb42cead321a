// Cheap NaN/Inf detection for the trainer's guard: x − x is 0 for every finite x and NaN for NaN and ±Inf,
// so one vectorised pass with no branches per element answers "all finite?".
using System.Numerics;
using System.Runtime.InteropServices;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Autograd;

public static class NumericGuard
{
    public static bool AllFinite(ReadOnlySpan<float> x)
    {
        var acc = Vector<float>.Zero;
        var vecs = MemoryMarshal.Cast<float, Vector<float>>(x);
        foreach (var v in vecs) acc += v - v;
        for (int i = vecs.Length * Vector<float>.Count; i < x.Length; i++)
            if (!float.IsFinite(x[i])) return false;
        return Vector.EqualsAll(acc, Vector<float>.Zero);
    }

    public static bool IsFinite(Tensor t) => AllFinite(t.IsContiguous ? t.Span : t.ToArray());

    /// <summary>True when every gradient present on these parameters is finite (parameters without one are skipped).</summary>
    public static bool GradientsFinite(IEnumerable<Parameter> parameters)
    {
        foreach (var p in parameters)
            if (p.Grad != null && !AllFinite(p.Grad.Span)) return false;
        return true;
    }
}
