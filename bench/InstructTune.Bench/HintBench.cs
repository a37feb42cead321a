// `hint` bench: HINT (an instruction encoded once per task, examples run without it) against instruction tuning with
// the instruction in every example's context (LoRA r 8 on q/v, the usual PEFT baseline), on Super-NaturalInstructions
// tasks from the shared test data: instruction = the task definition + its first `--shots` positive examples, examples
// = the task's first `--examples` instances ("Input: … Output: …"), tokenised with the llama2 tokenizer (ids taken
// modulo the bench model's vocabulary: only lengths matter here). Per task, one training step's forward + backward of
// the n examples (one batch, the same random Llama of config S) is timed for both, in the same process, and the
// forward FLOPs per example are counted from the shapes:
//   per token and layer: 2·(D·H·hd + 2·D·KV·hd + H·hd·D + 3·D·F) + 4·H·hd·(keys it attends: causal, + P prompts for HINT)
//   per token: 2·D·V (LM head)
//   in context: n·(I + X) tokens through L layers;   HINT: I tokens through encoder_layers once + n·X tokens through L.
// Training FLOPs of a frozen base with adapters ≈ 2 × its forward (activation gradients; adapter gradients are small);
// HINT's encoder runs forward only. Usage:
//   dotnet run -c Release --project bench/InstructTune.Bench -- hint [--examples 8] [--shots 2] [--repeat 3] [--max-len 384]
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft.Hint;
using InstructTune.Peft.Lora;
using InstructTune.Tokenizers;

namespace InstructTune.Bench;

public static class HintBench
{
    private const int D = 256, L = 4, H = 4, KV = 4, F = 688, V = 4096;

    public static int Run(string[] args)
    {
        int n = 8, shots = 2, repeat = 3, maxLen = 384;
        for (int i = 0; i + 1 < args.Length; i += 2)
            switch (args[i])
            {
                case "--examples": n = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--shots": shots = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--repeat": repeat = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--max-len": maxLen = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"hint: unknown option {args[i]}"); return 2;
            }
        var shared = InstructTune.Common.SharedTestData.Path();
        var tok = TokenizerLoader.Load(Path.Combine(shared, "tokenizers", "llama2", "tokenizer.model"));
        var files = Directory.GetFiles(Path.Combine(shared, "datasets", "super-natural-instructions", "tasks"), "*.json").Order().ToList();
        var config = new LlamaConfig { VocabSize = V, HiddenSize = D, IntermediateSize = F, NumHiddenLayers = L, NumAttentionHeads = H, NumKeyValueHeads = KV, MaxPositionEmbeddings = 4096 };
        var hintConfig = new HintConfig();
        Console.WriteLine($"hint bench: config S (hidden {D}, {L} layers, ffn {F}, vocab {V}), {n} examples per task, {shots}-shot instructions, "
            + $"encoder_layers {hintConfig.EncoderLayers}, {Environment.ProcessorCount} cores; median of {repeat} forward+backward steps");
        Console.WriteLine($"{"task",-52} {"I",5} {"X",5} {"fwd GFLOP/ex ctx",17} {"HINT",7} {"ratio",6} {"step s ctx",10} {"HINT",7} {"ratio",6}");
        double sumCtx = 0, sumHint = 0, sumTc = 0, sumTh = 0;
        foreach (var file in files)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            var root = doc.RootElement;
            string instruction = "Definition: " + string.Join(" ", root.GetProperty("Definition").EnumerateArray().Select(e => e.GetString()))
                + string.Concat(root.GetProperty("Positive Examples").EnumerateArray().Take(shots).Select((e, k) =>
                    $"\nPositive example {k + 1}:\nInput: {e.GetProperty("input").GetString()}\nOutput: {e.GetProperty("output").GetString()}"));
            var examples = root.GetProperty("Instances").EnumerateArray().Take(n)
                .Select(e => $"\nNow complete the following example.\nInput: {e.GetProperty("input").GetString()}\nOutput: {e.GetProperty("output")[0].GetString()}").ToList();
            int[] Ids(string s) => tok.Encode(s).Ids.Select(x => x % V).ToArray();
            var instr = Ids(instruction); if (instr.Length > maxLen) instr = instr[..maxLen];
            var ex = examples.Select(Ids).Select(x => x.Length > maxLen ? x[..maxLen] : x).ToList();
            double I = instr.Length, X = ex.Average(x => x.Length);

            // (B, T) rows of instruction + example, segments 1 on the instruction, 3 on the example, labels = the example.
            int T = instr.Length + ex.Max(x => x.Length);
            var ids = new int[n * T]; var seg = new int[n * T]; var mask = new int[n * T]; var lab = new int[n * T];
            Array.Fill(lab, -100);
            for (int b = 0; b < ex.Count; b++)
            {
                var row = instr.Concat(ex[b]).ToArray();
                for (int t = 0; t < row.Length; t++) { ids[b * T + t] = row[t]; mask[b * T + t] = 1; seg[b * T + t] = t < instr.Length ? 1 : 3; if (t >= instr.Length) lab[b * T + t] = row[t]; }
            }
            var batch = new LlamaBatch(new IntTensor(ids, n, T))
            {
                AttentionMask = new IntTensor(mask, n, T), Segments = new IntTensor(seg, n, T), Labels = new IntTensor(lab, n, T),
            };
            var ctx = new LlamaModel(config); ctx.InitializeWeights(1);
            LoraInjector.Inject(ctx, new LoraConfig { Rank = 8, Alpha = 16 }, seed: 2);
            var hint = new LlamaModel(config); hint.InitializeWeights(1);
            var hyper = HintInjector.Inject(hint, hintConfig, 2);
            double tc = Median(repeat, () => Step(ctx, batch)), th = Median(repeat, () => Step(hint, batch));
            if (hyper.Runs != repeat + 1) throw new InvalidOperationException($"HINT encoded {hyper.Runs} instructions in {repeat + 1} steps of one task");
            double fc = Forward(I + X, L, 0), fh = Forward(X, L, hintConfig.NumVirtualTokens) + EncoderOnce(I, hintConfig.EncoderLayers) / n;
            sumCtx += fc; sumHint += fh; sumTc += tc; sumTh += th;
            Console.WriteLine($"{Path.GetFileNameWithoutExtension(file),-52} {I,5:F0} {X,5:F0} {fc / 1e9,17:F3} {fh / 1e9,7:F3} {fc / fh,6:F2} {tc,10:F3} {th,7:F3} {tc / th,6:F2}");
        }
        Console.WriteLine($"{"all tasks",-52} {"",5} {"",5} {sumCtx / 1e9,17:F3} {sumHint / 1e9,7:F3} {sumCtx / sumHint,6:F2} {sumTc,10:F3} {sumTh,7:F3} {sumTc / sumTh,6:F2}");
        return 0;
    }

    /// <summary>Forward FLOPs of one example of <paramref name="tokens"/> tokens through <paramref name="layers"/> layers and
    /// the LM head (causal attention: token t attends t + 1 keys, plus <paramref name="prompts"/>).</summary>
    private static double Forward(double tokens, int layers, int prompts)
    {
        int hd = D / H;
        double dense = 2.0 * (D * H * hd + 2.0 * D * KV * hd + H * hd * D + 3.0 * D * F);
        double keys = tokens * (tokens + 1) / 2 + tokens * prompts;
        return layers * (tokens * dense + 4.0 * H * hd * keys) + tokens * 2.0 * D * V;
    }

    /// <summary>The instruction through the encoder layers (no LM head), once per task.</summary>
    private static double EncoderOnce(double tokens, int layers) => Forward(tokens, layers, 0) - tokens * 2.0 * D * V;

    private static double Step(LlamaModel model, LlamaBatch batch)
    {
        var sw = Stopwatch.StartNew();
        using (var tape = Tape.Record()) tape.Backward(model.Forward(batch, new LlamaForwardOptions { ReturnLogits = false }).Loss!);
        model.ZeroGrad();
        return sw.Elapsed.TotalSeconds;
    }

    private static double Median(int repeat, Func<double> run)
    {
        run();   // warm-up
        var t = Enumerable.Range(0, repeat).Select(_ => run()).Order().ToList();
        return t[t.Count / 2];
    }
}
