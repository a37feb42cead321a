// Index tensors (token ids, labels, positions, document ids): int32 storage, row-major.
// int64 input (as in torch / safetensors I64) is narrowed with a range check.
namespace InstructTune.Engine.Tensors;

public sealed class IntTensor
{
    public int[] Data { get; }
    public int[] Shape { get; }
    public int Length => Data.Length;

    public IntTensor(int[] data, params int[] shape)
    {
        if (Tensor.ShapeLength(shape) != data.Length)
            throw new ArgumentException($"IntTensor: {data.Length} values do not fill shape {Tensor.ShapeString(shape)}");
        Data = data;
        Shape = (int[])shape.Clone();
    }

    public static IntTensor FromInt64(long[] data, params int[] shape)
    {
        var d = new int[data.Length];
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] < int.MinValue || data[i] > int.MaxValue)
                throw new ArgumentOutOfRangeException(nameof(data), $"IntTensor.FromInt64: value {data[i]} at index {i} does not fit int32");
            d[i] = (int)data[i];
        }
        return new IntTensor(d, shape);
    }

    public long[] ToInt64() => Array.ConvertAll(Data, x => (long)x);

    public Span<int> Span => Data;
    public int this[int i] => Data[i];
    public override string ToString() => $"IntTensor{Tensor.ShapeString(Shape)}";
}
