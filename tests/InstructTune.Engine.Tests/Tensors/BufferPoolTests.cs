// BufferPool's bounds: shapes that repeat are reused forever, shapes that keep changing cannot pile up more idle
// buffers than one working set, and buffers idle past MaxIdleMilliseconds are given back. The pool is process-wide,
// so these tests run alone (non-parallel collection) and use lengths no other test rents.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Tests.Tensors;

[CollectionDefinition("BufferPool", DisableParallelization = true)]
public sealed class BufferPoolCollection;

[Collection("BufferPool")]
public class BufferPoolTests
{
    private const int Base = 1_000_003;   // odd lengths no other engine test asks for

    [Fact]
    public void RepeatedShapesAreReusedEveryStepAndNeverDropped()
    {
        BufferPool.Trim();
        int[] lengths = [Base, Base + 2, Base + 4];
        var first = lengths.Select(n => BufferPool.Rent(n, zero: true)).ToArray();
        foreach (var a in first) BufferPool.Return(a);
        for (int step = 0; step < 5; step++)
        {
            var again = lengths.Select(n => BufferPool.Rent(n, zero: true)).ToArray();
            for (int i = 0; i < lengths.Length; i++) Assert.Same(first[i], again[i]);
            Assert.All(again, a => Assert.Equal(0f, a.Max()));
            again[1][7] = 3f;   // dirtied: the next zeroed rent must clear it
            foreach (var a in again) BufferPool.Return(a);
            Assert.Equal(lengths.Sum(n => (long)n + BufferPool.Slack), BufferPool.PooledFloats);
        }
    }

    [Fact]
    public void ShapesThatKeepChangingStayWithinOneWorkingSet()
    {
        BufferPool.Trim();
        long workingSet = 0;
        for (int step = 0; step < 40; step++)
        {
            // A batch of a new length every step (unpacked data): four activations of T * 1000 floats.
            int T = 200 + 3 * step;
            var rented = Enumerable.Range(0, 4).Select(i => BufferPool.Rent(T * 1000 + i, zero: false)).ToArray();
            workingSet = Math.Max(workingSet, rented.Sum(a => (long)a.Length));
            foreach (var a in rented) BufferPool.Return(a);
            Assert.True(BufferPool.PooledFloats + BufferPool.InUseFloats <= BufferPool.PeakInUseFloats,
                $"step {step}: idle {BufferPool.PooledFloats} + in use {BufferPool.InUseFloats} > peak {BufferPool.PeakInUseFloats}");
        }
        // Unbounded, the pool would hold all 40 steps' buffers (about 40 working sets).
        Assert.True(BufferPool.PooledFloats <= workingSet, $"idle {BufferPool.PooledFloats} floats, one working set is {workingSet}");
        Assert.Equal(0, BufferPool.InUseFloats);
    }

    [Fact]
    public void BuffersIdlePastTheLimitAreGivenBack()
    {
        var saved = BufferPool.Clock;
        long now = 1_000_000;
        BufferPool.Clock = () => now;
        try
        {
            BufferPool.Trim();
            var old = BufferPool.Rent(Base + 6, zero: false);
            var kept = BufferPool.Rent(Base + 8, zero: false);
            var probe = BufferPool.Rent(Base + 10, zero: false);   // all three rented at once: within the size bound
            BufferPool.Return(old);
            now += BufferPool.MaxIdleMilliseconds - 500;
            BufferPool.Return(kept);                  // within the limit: both stay
            Assert.Equal(old.Length + (long)kept.Length, BufferPool.PooledFloats);
            now += 1_500;                              // old is now past the limit, kept is not
            BufferPool.Return(probe);
            Assert.Equal(kept.Length + (long)probe.Length, BufferPool.PooledFloats);
            Assert.NotSame(old, BufferPool.Rent(Base + 6, zero: false));
            Assert.Same(kept, BufferPool.Rent(Base + 8, zero: false));
        }
        finally
        {
            BufferPool.Clock = saved;
            BufferPool.Trim();
        }
    }

    [Fact]
    public void ReshapeBackwardHandsItsGradientOverInsteadOfAllocatingAnother()
    {
        const int R = 61, C = 1009;   // lengths no other test rents
        var rng = new Random(3);
        var w = new Parameter(Enumerable.Range(0, R * C).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), R, C);
        var x = Tensor.FromArray(Enumerable.Range(0, R * C).Select(_ => (float)rng.NextDouble()).ToArray(), R, C);
        (long Peak, float[] Grad) Run(bool reshapes)
        {
            w.ZeroGrad();
            BufferPool.Trim();
            using (var tape = Tape.Record())
            {
                var h = Ops.Mul(w, x);                                                   // (R, C) activation
                if (reshapes) h = Ops.Reshape(Ops.Reshape(h, R * C), R, C);              // as the logits between head and loss
                tape.Backward(Ops.Sum(h));                                              // nothing else of R·C stays alive
            }
            return (BufferPool.PeakInUseFloats, w.Grad!.ToArray());
        }
        var plain = Run(reshapes: false);
        var viewed = Run(reshapes: true);
        Assert.Equal(plain.Peak, viewed.Peak);     // a zeroed copy per reshape would add R·C floats at the peak
        Assert.Equal(x.ToArray(), viewed.Grad);    // d/dw Σ w⊙x = x either way
        Assert.Equal(plain.Grad, viewed.Grad);
        BufferPool.Trim();
    }
}
