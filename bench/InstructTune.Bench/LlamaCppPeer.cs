// llama.cpp as the decode/prefill peer in the same process: the very checkpoint our engine runs is exported with
// `itune export gguf` (GgufExporter) at the precision asked (f32, bf16 or q8_0) and loaded by llama.cpp through
// LLamaSharp 0.30 (LLamaSharp.Backend.Cpu picks its AVX-512 build here), with the same thread count as our kernels.
// Timed like ours: an untimed warm-up, then prefill = one prompt of T tokens into an empty context (logits of the
// last only), decode = greedy tokens one at a time after a 16-token prompt (argmax over the logits each step).
// Its context is llama.cpp's default for users (F16 KV cache, flash attention as llama.cpp decides), and its
// OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE unless set), the PyTorch peers' setting too: on this
// shared machine spinning OpenMP workers made llama.cpp's M float32 decode 5× slower (9.4 → 51.1 tok/s,
// CPU 40.8 → 8.1 ms/token, load average 37–47), so the peer runs at its best setting here. The checkpoints have no tokenizer; a 96-token byte-level vocabulary is written beside
// them so the GGUF loads (ids are fed directly; ids past 96 are "[PADn]" tokens of type unused, as llama.cpp's
// converter pads a vocabulary).
using System.Diagnostics;
using System.Text.Json;
using InstructTune.Export.Gguf;
using InstructTune.Generation;
using LLama;
using LLama.Common;
using LLama.Native;

namespace InstructTune.Bench;

public sealed class LlamaCppPeer : IDisposable
{
    private readonly ModelParams _p;
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _ctx;
    public string GgufPath { get; }
    public long GgufBytes { get; }

    private LlamaCppPeer(string gguf, int contextTokens, int threads)
    {
        GgufPath = gguf;
        GgufBytes = new FileInfo(gguf).Length;
        _p = new ModelParams(gguf)
        {
            ContextSize = (uint)contextTokens, BatchSize = (uint)contextTokens, UBatchSize = (uint)contextTokens,
            Threads = threads, BatchThreads = threads, GpuLayerCount = 0,
        };
        _weights = LLamaWeights.LoadFromFile(_p);
        _ctx = _weights.CreateContext(_p);
    }

    /// <summary>Exports <paramref name="checkpointDir"/> to GGUF at <paramref name="ggufDtype"/> (f32 | bf16 | q8_0)
    /// and loads it; null (with the reason on stderr) when llama.cpp cannot run it here.</summary>
    public static LlamaCppPeer? Open(string checkpointDir, string ggufDtype, int contextTokens, int threads)
    {
        try
        {
            WriteByteTokenizer(checkpointDir);
            // Beside the folder, not in it: the bench measures the folder's resident mapped pages as ours.
            string gguf = Path.GetFullPath(checkpointDir).TrimEnd('/') + $".{ggufDtype}.gguf";
            GgufExporter.Export(new GgufExportOptions(checkpointDir, gguf, GgufExporter.ParseDType(ggufDtype)));
            QuietLogs();
            return new LlamaCppPeer(gguf, contextTokens, threads);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"llama.cpp peer ({ggufDtype}) unavailable: {e.GetType().Name}: {e.Message}");
            return null;
        }
    }

    private static bool _logsSet;

    /// <summary>llama.cpp's load log (one line per tensor) would bury the bench's output; set before the library loads.</summary>
    private static void QuietLogs()
    {
        if (_logsSet) return;
        _logsSet = true;
        // libgomp reads it when llama.cpp's CPU backend loads it (the first model load below).
        InstructTune.Engine.Native.OneDnn.SetNativeEnvIfUnset("OMP_WAIT_POLICY", "PASSIVE");
        try { NativeLibraryConfig.All.WithLogCallback((level, msg) => { if (level == LLamaLogLevel.Error) Console.Error.Write($"llama.cpp: {msg}"); }); }
        catch (Exception e) when (e is InvalidOperationException or LLama.Exceptions.RuntimeError) { }
    }

    /// <summary>Prefill tokens/s of one prompt into an empty context (logits of the last position only).</summary>
    public double Prefill(int[] prompt)
    {
        _ctx.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int t = 0; t < prompt.Length; t++) batch.Add((LLamaToken)prompt[t], t, LLamaSeqId.Zero, t == prompt.Length - 1);
        var sw = Stopwatch.StartNew();
        Check(_ctx.Decode(batch));
        return prompt.Length / sw.Elapsed.TotalSeconds;
    }

    /// <summary>Greedy decode of <paramref name="n"/> tokens after <paramref name="prompt"/>: (tokens/s, CPU ms per token).</summary>
    public (double TokensPerS, double CpuMs) Decode(int[] prompt, int n)
    {
        _ctx.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int t = 0; t < prompt.Length; t++) batch.Add((LLamaToken)prompt[t], t, LLamaSeqId.Zero, t == prompt.Length - 1);
        Check(_ctx.Decode(batch));
        int last = batch.TokenCount - 1;
        var sw = Stopwatch.StartNew();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        for (int i = 0; i < n; i++)
        {
            int next = LogitsSampler.ArgMax(_ctx.NativeHandle.GetLogitsIth(last));
            batch.Clear();
            batch.Add((LLamaToken)next, prompt.Length + i, LLamaSeqId.Zero, true);
            Check(_ctx.Decode(batch));
            last = 0;
        }
        double s = sw.Elapsed.TotalSeconds;
        return (n / s, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / n);
    }

    private static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode returned {r}");
    }

    /// <summary>A 96-token byte-level BPE tokenizer.json (GPT-2's byte map for bytes 0..95), unless one exists.</summary>
    private static void WriteByteTokenizer(string dir)
    {
        string path = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(path)) return;
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 96; b++) vocab[b <= 32 ? ((char)(256 + b)).ToString() : ((char)b).ToString()] = b;
        File.WriteAllText(path, JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["version"] = "1.0", ["added_tokens"] = Array.Empty<object>(), ["normalizer"] = null,
            ["pre_tokenizer"] = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            ["post_processor"] = null, ["decoder"] = new { type = "ByteLevel" },
            ["model"] = new Dictionary<string, object?> { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = Array.Empty<string>() },
        }));
    }

    public void Dispose()
    {
        _ctx.Dispose();
        _weights.Dispose();
        try { File.Delete(GgufPath); } catch (IOException) { }
    }
}
