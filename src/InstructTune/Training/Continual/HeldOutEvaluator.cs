using InstructTune.Data.Batching;
using InstructTune.Data.Records;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Training.Losses;

namespace InstructTune.Training.Continual;

/// <summary>One held-out set scored by the current model.</summary>
/// <param name="Loss">Mean cross-entropy over the response tokens.</param>
/// <param name="TokenAccuracy">Share of response tokens whose argmax prediction (teacher forcing) is the reference token.</param>
/// <param name="ExactMatch">Share of examples whose every response token is the argmax: exactly the examples that greedy
/// decoding reproduces token for token (including the learned end-of-turn token), without running generation.</param>
public sealed record HeldOutScore(double Loss, double TokenAccuracy, double ExactMatch, int Examples, int Tokens);

/// <summary>Scores held-out examples without recording gradients: loss, token accuracy and exact match of the responses.</summary>
public static class HeldOutEvaluator
{
    public static HeldOutScore Score(LlamaModel model, IReadOnlyList<TokenizedExample> examples, int batchSize, int maxSeqLen, int padId)
    {
        var learned = examples.Where(e => e.LearnedTokens > 0).ToList();
        if (learned.Count == 0) return new HeldOutScore(double.NaN, double.NaN, double.NaN, 0, 0);
        var sampler = new DataSampler(learned, new BatchOptions(BatchMode.Bucketed, batchSize, maxSeqLen), padId, 0);
        int V = model.Config.VocabSize;
        double lossSum = 0; long tokens = 0, correct = 0; int exact = 0, seen = 0;
        for (int i = 0; i < sampler.BatchesPerEpoch; i++)
        {
            var b = sampler.Next();
            var targets = InstructionObjective.InstructionTargets(b);      // (B·T): labels[t+1], −100 where not scored
            float[] logits, losses;
            using (Tape.Record(recordGrad: false))
            {
                var output = model.Forward(InstructionObjective.ToModelBatch(b), new LlamaForwardOptions { ReturnLogits = true });
                var flat = Ops.Reshape(output.Logits!, b.B * b.T, V);                            // (B·T, V)
                losses = Ops.CrossEntropyLosses(flat, targets, 0f, out _).ToArray();             // (B·T), 0 where not scored
                logits = flat.ToArray();
            }
            // Per example (row, document): all of its scored positions argmax-correct = an exact match.
            var examplesInBatch = new Dictionary<(int Row, int Doc), bool>();
            for (int n = 0; n < targets.Length; n++)
            {
                if (targets[n] == CrossEntropyKernel.IgnoreIndex) continue;
                var row = logits.AsSpan(n * V, V);
                int arg = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);
                lossSum += losses[n];
                tokens++;
                bool ok = arg == targets[n];
                if (ok) correct++;
                var id = (n / b.T, b.DocumentIds[n]);
                examplesInBatch[id] = examplesInBatch.GetValueOrDefault(id, true) && ok;
            }
            exact += examplesInBatch.Values.Count(x => x);
            seen += examplesInBatch.Count;
        }
        return new HeldOutScore(lossSum / tokens, (double)correct / tokens, seen == 0 ? 0 : (double)exact / seen, seen, (int)tokens);
    }
}
