namespace InstructTune.Bench;

/// <summary>Maps a benchmark name to its entry point; each area adds one line.</summary>
public static class BenchCatalog
{
    private static readonly Dictionary<string, (string Help, Func<string[], int> Run)> Benches = new()
    {
        ["decode"] = ("prefill and single-stream decode tokens/s of config S|M|L, f32 and bf16, vs PyTorch", DecodeBench.Run),
        ["prefill"] = ("prompt tokens/s of config S|M|L with --compute bf16|float32 vs PyTorch computing the same way [--dtype bfloat16]", PrefillBench.Run),
        ["gemm"] = ("GEMM GFLOP/s of config-L step products, managed vs OpenBLAS; GEMV GB/s", GemmBench.Run),
        ["step"] = ("training step tokens/s, MFU, peak RSS of config S|M|L vs PyTorch; --ranks 1,2: data parallel under mpirun", StepBench.Run),
        ["step-rank"] = ("(internal) one rank of step --ranks, started by mpirun", DataParallelStepBench.RankMain),
        ["data"] = ("prepare 50k Alpaca-sized records (llama2, alpaca template, dedup, packing): records/s, memory", DataBench.Run),
        ["serve"] = ("itune serve requests/s and tokens/s at 1, 4, 16 concurrent clients on config S over HTTP [--requests 32 --max-tokens 64]", ServeBench.Run),
        ["tokenizers"] = ("encode MB/s: llama2 .model and T5 unigram vs sentencepiece, llama3 tokenizer.json vs HF tokenizers [--mb 10]", TokenizerBench.Run),
        ["hint"] = ("HINT (instruction encoded once per task) vs LoRA with the instruction in context: FLOPs per example and step time on SNI tasks [--examples 8 --shots 2]", HintBench.Run),
        ["tokenize"] = ("alias of tokenizers", TokenizerBench.Run),
    };

    public static int Run(string[] args)
    {
        if (args.Length == 0 || !Benches.TryGetValue(args[0], out var bench))
        {
            Console.Error.WriteLine("usage: InstructTune.Bench <bench> [options]; benches:");
            foreach (var (name, b) in Benches) Console.Error.WriteLine($"  {name,-12} {b.Help}");
            return args.Length == 0 ? 0 : 2;
        }
        return bench.Run(args[1..]);
    }
}
