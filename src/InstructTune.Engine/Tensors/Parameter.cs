// A trainable tensor: owns its (heap) storage and a persistent gradient that accumulates across backward
// passes (micro-batches) until ZeroGrad. Frozen parameters receive no gradient.
namespace InstructTune.Engine.Tensors;

public sealed class Parameter : Tensor
{
    private bool frozen;

    public Parameter(params int[] shape) : base(new float[ShapeLength(shape)], 0, (int[])shape.Clone()) => RequiresGrad = true;

    public Parameter(float[] data, params int[] shape) : base(data, 0, (int[])shape.Clone())
    {
        if (ShapeLength(shape) != data.Length)
            throw new ArgumentException($"Parameter: {data.Length} values do not fill shape {ShapeString(shape)}");
        RequiresGrad = true;
    }

    /// <summary>When true the parameter is a constant for autograd (no gradient buffer, skipped by optimizers).</summary>
    public bool Frozen
    {
        get => frozen;
        set { frozen = value; RequiresGrad = !value; if (value) Grad = null; }
    }

    /// <summary>The gradient lives on the heap for the parameter's lifetime (not in a tape's pool).</summary>
    public override Tensor EnsureGrad() => Grad ??= Zeros(Shape);

    public void ZeroGrad() { if (Grad != null) Grad.Span.Clear(); }

    /// <summary>Copies values in (same element count), e.g. from a checkpoint.</summary>
    public void Load(ReadOnlySpan<float> values)
    {
        if (values.Length != Length)
            throw new ArgumentException($"Parameter.Load: {values.Length} values for shape {ShapeString(Shape)}");
        values.CopyTo(Span);
    }
}
