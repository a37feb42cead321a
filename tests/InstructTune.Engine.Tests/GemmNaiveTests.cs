using InstructTune.Engine.Kernels;

namespace InstructTune.Engine.Tests;

public class GemmNaiveTests
{
    [Fact]
    public void NaiveGemmComputesAHandWorkedProduct()
    {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50], worked by hand.
        float[] a = [1, 2, 3, 4], b = [5, 6, 7, 8], c = new float[4];
        Gemm.SgemmNaive(false, false, 2, 2, 2, 1f, a, 2, b, 2, 0f, c, 2);
        Assert.Equal([19f, 22f, 43f, 50f], c);
        Gemm.SgemmNaive(true, true, 2, 2, 2, 1f, a, 2, b, 2, 1f, c, 2);
        // Aᵀ·Bᵀ = [1 3; 2 4]·[5 7; 6 8] = [23 31; 34 46], accumulated onto the previous C.
        Assert.Equal([19f + 23f, 22f + 31f, 43f + 34f, 50f + 46f], c);
    }
}
