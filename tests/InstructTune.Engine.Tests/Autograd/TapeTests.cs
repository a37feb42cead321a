using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using static InstructTune.Engine.Tests.TestUtil;

namespace InstructTune.Engine.Tests.Autograd;

public class TapeTests
{
    [Fact]
    public void ParameterGradientsAccumulateAcrossMicroBatchesUntilZeroGrad()
    {
        var w = new Parameter([2f, 3f], 2);
        var x = Tensor.FromArray([1f, 10f], 2);
        for (int i = 0; i < 2; i++)
            using (var tape = Tape.Record()) tape.Backward(Ops.Sum(Ops.Mul(w, x)));
        Assert.Equal([2f, 20f], w.Grad!.ToArray()); // d/dw Σ w⊙x = x, twice
        w.ZeroGrad();
        Assert.Equal([0f, 0f], w.Grad!.ToArray());
    }

    [Fact]
    public void FrozenParametersGetNoGradientAndNoGradRecordsNothing()
    {
        var w = new Parameter([2f], 1) { Frozen = true };
        var v = new Parameter([3f], 1);
        using (var tape = Tape.Record())
        {
            var y = Ops.Mul(w, v);
            tape.Backward(y);
        }
        Assert.Null(w.Grad);
        Assert.Equal(2f, v.Grad!.Item());
        using (var tape = Tape.Record())
        using (Tape.NoGrad())
            Assert.False(Ops.Mul(v, v).RequiresGrad);
    }

    [Fact]
    public void TensorsFromADisposedTapeThrowInsteadOfReadingReusedMemory()
    {
        Tensor y;
        using (Tape.Record()) y = Ops.Scale(Tensor.FromArray([1f, 2f], 2), 2f);
        Assert.Throws<ObjectDisposedException>(() => y.ToArray());
    }

    [Fact]
    public void PooledBuffersAreReusedOnTheNextStep()
    {
        // An odd size no other test uses, so tests running in parallel cannot take the returned buffer first.
        var x = Tensor.FromArray(Rand(12347, 1), 12347);
        float[] first;
        using (Tape.Record()) first = Ops.Scale(x, 2f).Storage;
        using (Tape.Record())
        {
            var again = Ops.Scale(x, 3f).Storage;
            Assert.Same(first, again);
        }
    }

    [Fact]
    public void IntermediateGradientsGoBackToThePoolDuringBackward()
    {
        var w = new Parameter(Rand(16, 1), 4, 4);
        var x = Tensor.FromArray(Rand(8, 2), 2, 4);
        using var tape = Tape.Record();
        var h = Ops.Linear(x, w);               // intermediate
        var y = Ops.Silu(h);
        tape.Backward(Ops.Sum(y));
        Assert.Null(h.Grad);                     // released once Linear's backward consumed it
        Assert.NotNull(w.Grad);                  // parameter gradients stay
    }

    [Fact]
    public void ShapeMismatchNamesTheOpAndBothShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.Add(Tensor.Zeros(2, 3), Tensor.Zeros(3, 2)));
        Assert.Contains("Add", ex.Message); Assert.Contains("[2, 3]", ex.Message); Assert.Contains("[3, 2]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Ops.Linear(Tensor.Zeros(4, 5), Tensor.Zeros(3, 6)));
        Assert.Contains("Linear", ex.Message); Assert.Contains("[4, 5]", ex.Message); Assert.Contains("[3, 6]", ex.Message);
    }

    [Fact]
    public void NumericGuardFindsNaNAndInfAnywhere()
    {
        var a = Rand(1001, 1);
        Assert.True(NumericGuard.AllFinite(a));
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            foreach (var at in new[] { 0, 500, 1000 })
            {
                var b = (float[])a.Clone(); b[at] = bad;
                Assert.False(NumericGuard.AllFinite(b), $"{bad} at {at}");
            }
        Assert.True(NumericGuard.AllFinite([float.MaxValue, -float.MaxValue]));
    }

    [Fact]
    public void CheckpointGivesTheSameGradientsAsThePlainBlock()
    {
        var w = new Parameter(Rand(64, 3), 8, 8);
        var x0 = Rand(5 * 8, 4);
        float[] Run(bool ckpt)
        {
            w.Grad = null;
            var x = Tensor.FromArray((float[])x0.Clone(), 5, 8); x.RequiresGrad = true;
            using var tape = Tape.Record();
            Func<Tensor, Tensor> block = h => Ops.Add(h, Ops.Silu(Ops.Linear(h, w)));
            var y = ckpt ? Checkpoint.Run(block, x) : block(x);
            tape.Backward(Ops.Sum(Ops.Mul(y, y)));
            return [.. w.Grad!.ToArray(), .. x.Grad!.ToArray()];
        }
        Assert.Equal(Run(false), Run(true));
    }
}

public class PoolAlignmentTests
{
    [Fact]
    public unsafe void PooledTensorsStartOnA64ByteBoundary()
    {
        using var tape = Tape.Record();
        foreach (var n in new[] { 1, 7, 63, 65, 1000 })
        {
            var t = Tensor.Empty([n]);
            fixed (float* p = &t.Span[0]) Assert.Equal(0, (long)(nint)p % 64);
        }
    }
}
