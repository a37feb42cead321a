// A float32 tensor: a window (offset, shape, strides) onto a float[] storage, plus what autograd needs.
// Row-major and contiguous unless produced by Transpose, which only swaps strides (a view, no copy).
// Storage comes from the current Tape's pool when one is open (returned when the tape is disposed, after
// which touching the tensor throws), else from the GC heap.
using System.Runtime.CompilerServices;

namespace InstructTune.Engine.Tensors;

public class Tensor
{
    private float[] storage;

    /// <summary>Index of element [0,…,0] in <see cref="Storage"/>.</summary>
    public int Offset { get; }
    public int[] Shape { get; }
    public int[] Strides { get; }
    /// <summary>Number of elements (product of the shape).</summary>
    public int Length { get; }

    /// <summary>True when gradients flow into this tensor (an input of a recorded op, or a trainable parameter).</summary>
    public bool RequiresGrad { get; set; }
    /// <summary>Gradient of the same shape, contiguous; allocated on first use in backward.</summary>
    public Tensor? Grad { get; set; }

    internal bool Released;
    /// <summary>The tape whose pool holds the storage (gradients are rented from the same tape); null = heap.</summary>
    internal Autograd.Tape? Owner;
    /// <summary>True when the storage array was rented for this tensor (not a view), so releasing returns it.</summary>
    internal bool OwnsStorage;

    public Tensor(float[] storage, int offset, int[] shape, int[]? strides = null)
    {
        this.storage = storage;
        Offset = offset;
        Shape = shape;
        Strides = strides ?? ContiguousStrides(shape);
        Length = ShapeLength(shape);
        if (Length > 0 && (offset < 0 || offset + MaxIndex() >= storage.Length))
            throw new ArgumentException($"Tensor: storage of {storage.Length} floats is too short for shape {ShapeString(shape)} at offset {offset}");
    }

    /// <summary>Wraps a GC array (no copy) with the given shape.</summary>
    public static Tensor FromArray(float[] data, params int[] shape)
    {
        if (ShapeLength(shape) != data.Length)
            throw new ArgumentException($"Tensor.FromArray: {data.Length} values do not fill shape {ShapeString(shape)}");
        return new Tensor(data, 0, (int[])shape.Clone());
    }

    /// <summary>A zero tensor on the GC heap (never pooled: parameters, optimizer state, long-lived values).</summary>
    public static Tensor Zeros(params int[] shape) => new(new float[ShapeLength(shape)], 0, (int[])shape.Clone());

    /// <summary>A tensor whose storage is rented from the current tape's pool (zeroed when asked), or the heap.</summary>
    public static Tensor Empty(int[] shape, bool zero = false) => Autograd.Tape.NewTensor(shape, zero);

    public float[] Storage => Released ? throw new ObjectDisposedException("Tensor", "this tensor's pooled storage was returned when its Tape was disposed; copy it with ToHeap() first") : storage;
    public int Rank => Shape.Length;
    public bool IsContiguous => IsContiguousLayout(Shape, Strides);

    /// <summary>Size of dimension d (negative counts from the end).</summary>
    public int Size(int d) => Shape[d < 0 ? Shape.Length + d : d];

    /// <summary>The elements as one contiguous span (throws for non-contiguous views: call Contiguous() first).</summary>
    public Span<float> Span
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException($"Tensor.Span: view of shape {ShapeString(Shape)} with strides {ShapeString(Strides)} is not contiguous; call Contiguous()");
            return Storage.AsSpan(Offset, Length);
        }
    }

    public float Item()
    {
        if (Length != 1) throw new InvalidOperationException($"Tensor.Item: shape {ShapeString(Shape)} is not a single value");
        return Storage[Offset];
    }

    /// <summary>A copy of the elements in row-major order (for tests and serialisation).</summary>
    public float[] ToArray()
    {
        var res = new float[Length];
        CopyTo(res);
        return res;
    }

    /// <summary>A GC-heap copy that survives the tape (no autograd history).</summary>
    public Tensor ToHeap() => FromArray(ToArray(), Shape);

    /// <summary>Copies the elements, in row-major order, into <paramref name="dst"/> (honours strides).</summary>
    public void CopyTo(Span<float> dst)
    {
        if (IsContiguous) { Span.CopyTo(dst); return; }
        var st = Storage;
        var idx = new int[Rank];
        for (int n = 0; n < Length; n++)
        {
            int off = Offset;
            for (int d = 0; d < Rank; d++) off += idx[d] * Strides[d];
            dst[n] = st[off];
            for (int d = Rank - 1; d >= 0; d--) { if (++idx[d] < Shape[d]) break; idx[d] = 0; }
        }
    }

    /// <summary>Same storage, other shape (no autograd; contiguous only). See Ops.Reshape for the recorded version.</summary>
    public Tensor View(params int[] shape)
    {
        shape = ResolveShape(shape, Length, "View");
        if (!IsContiguous) throw new InvalidOperationException($"View: tensor of shape {ShapeString(Shape)} is not contiguous");
        var t = new Tensor(Storage, Offset, shape);
        Autograd.Tape.TrackView(this, t);
        return t;
    }

    /// <summary>Ensures <see cref="Grad"/> exists (zeroed) and returns it.</summary>
    public virtual Tensor EnsureGrad() => Grad ??= Autograd.Tape.NewTensorIn(Owner, Shape, zero: true);

    internal void Release() { Released = true; storage = []; Grad = null; }

    public override string ToString() => $"Tensor{ShapeString(Shape)}";

    // ---- shape helpers shared by ops and error messages ----

    public static string ShapeString(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";

    public static int ShapeLength(IReadOnlyList<int> shape)
    {
        long n = 1;
        foreach (var s in shape)
        {
            if (s < 0) throw new ArgumentException($"negative dimension in shape {ShapeString(shape)}");
            n *= s;
        }
        if (n > int.MaxValue) throw new ArgumentException($"shape {ShapeString(shape)} has more than 2^31 elements");
        return (int)n;
    }

    public static int[] ContiguousStrides(int[] shape)
    {
        var st = new int[shape.Length];
        int s = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { st[d] = s; s *= shape[d]; }
        return st;
    }

    internal static bool IsContiguousLayout(int[] shape, int[] strides)
    {
        int s = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] != 1 && strides[d] != s) return false;
            s *= shape[d];
        }
        return true;
    }

    /// <summary>Replaces one −1 entry by the size that keeps <paramref name="length"/> elements.</summary>
    internal static int[] ResolveShape(int[] shape, int length, string op)
    {
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0)
        {
            int rest = 1;
            for (int d = 0; d < shape.Length; d++) if (d != infer) rest *= shape[d];
            if (rest == 0 || length % rest != 0) throw new ArgumentException($"{op}: cannot reshape {length} elements to {ShapeString(shape)}");
            shape[infer] = length / rest;
        }
        if (ShapeLength(shape) != length) throw new ArgumentException($"{op}: cannot reshape {length} elements to {ShapeString(shape)}");
        return shape;
    }

    private int MaxIndex()
    {
        int m = 0;
        for (int d = 0; d < Shape.Length; d++) m += (Shape[d] - 1) * Strides[d];
        return m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CheckSameShape(string op, Tensor a, Tensor b)
    {
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
            throw new ArgumentException($"{op}: shape mismatch {ShapeString(a.Shape)} vs {ShapeString(b.Shape)}");
    }
}
