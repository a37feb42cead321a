// Chain-of-thought pathways over KV caches (the training forward: Models/InstructionAware/CotPathways.cs): per fed
// token, after the last decoder layer, X ← X + Σ_k act_k(X W_kᵀ + b_k) W_o,kᵀ with the engine's activation kernels.
using InstructTune.Engine.Kernels;
using InstructTune.Models.InstructionAware;

namespace InstructTune.Models.Inference;

public sealed partial class InferenceModel
{
    private void ApplyCot(CotWeights w, float[] X, int N)
    {
        int D = Config.HiddenSize, r = w.Width;
        var Z = new float[N * r];
        var A = new float[N * r];
        var Y = new float[N * D];
        var sum = new float[N * D];
        for (int k = 0; k < global::InstructTune.Models.InstructionAware.CotPathways.Paths; k++)
        {
            InferenceLinear.Forward(X, WeightMatrix.FromF32(r, D, w.W[k]), w.B[k], Z, N);
            switch (k)
            {
                case 0: ActivationKernels.SiluForward(Z, A); break;
                case 1: ActivationKernels.GeluForward(Z, A, tanhApproximation: false); break;
                default: System.Numerics.Tensors.TensorPrimitives.Tanh(Z, A); break;
            }
            InferenceLinear.Forward(A, WeightMatrix.FromF32(D, r, w.Out[k]), [], Y, N);
            if (k == 0) Y.CopyTo(sum, 0); else System.Numerics.Tensors.TensorPrimitives.Add(sum, Y, sum);
        }
        System.Numerics.Tensors.TensorPrimitives.Add(X, sum, X);   // h + ((y_1 + y_2) + y_3), the training order
    }
}
