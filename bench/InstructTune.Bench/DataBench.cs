using System.Diagnostics;
using System.Text.Json;
using InstructTune.Data.Loading;
using InstructTune.Data.Pipeline;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Tokenizers;

namespace InstructTune.Bench;

/// <summary>
/// <c>bench -- data [--records N] [--peer]</c>: prepares N Alpaca-sized examples (the 5,000-record sample replicated
/// with varied text, written to a temp JSON file) with the llama2 tokenizer and the alpaca template, dedup and
/// packing estimates on, and prints records/s; then the same at 4× the records to show memory stays flat (the peak
/// working set after the 4× run against after the 1× run). Peer (same run, --peer): python3 + sentencepiece
/// tokenizing the same texts with the same template (json load + encode only, no masks, dedup or writes).
/// </summary>
public static class DataBench
{
    public static int Run(string[] args)
    {
        int records = ArgInt(args, "--records", 50_000);
        bool peer = args.Contains("--peer");
        bool memory = !args.Contains("--no-memory");
        var root = FindRepoRoot();
        var shared = InstructTune.Common.SharedTestData.Path();
        var sample = Path.Combine(shared, "datasets", "alpaca", "alpaca_5000.json");
        int ti = Array.IndexOf(args, "--tokenizer");
        // Default: llama2's SentencePiece model (same ids as its tokenizer.json, which has no pre-tokenizer and so cannot cache words).
        var tokenizerDir = ti >= 0 && ti + 1 < args.Length ? args[ti + 1] : Path.Combine(shared, "tokenizers", "llama2", "tokenizer.model");
        var work = Directory.CreateTempSubdirectory("itune-databench").FullName;
        try
        {
            var input = Path.Combine(work, $"alpaca_{records}.json");
            Replicate(sample, input, records);
            var tokenizer = TokenizerLoader.Load(tokenizerDir);
            // Warm-up on a small file so JIT is not timed.
            var warm = Path.Combine(work, "warm.json");
            Replicate(sample, warm, 500);
            PreparePipeline.Run(Options(warm, tokenizerDir, Path.Combine(work, "warm-out")), tokenizer);

            var (seconds, stats) = Time(input, tokenizerDir, Path.Combine(work, "out1"), tokenizer);
            double rps = stats.RecordsRead / seconds;
            long peak1 = Process.GetCurrentProcess().PeakWorkingSet64, heap1 = _peakHeap;
            Console.WriteLine($"data prepare: {stats.RecordsRead} records ({stats.RecordsKept} kept, {stats.DuplicatesRemoved} duplicates, {stats.Tokens.Total} tokens) in {seconds:F2} s = {rps:F0} records/s");
            Console.WriteLine($"  padding plain {stats.PaddingShare.Plain:P1}, bucketed {stats.PaddingShare.Bucketed:P1}, packed {stats.PaddingShare.Packed:P1}");
            var (loadCpu, renderCpu) = StageCosts(input);
            Console.WriteLine($"  load + validate + dedup alone: {loadCpu:F2} CPU-s; + alpaca rendering: {renderCpu:F2} CPU-s");
            var tokOnly = TokenizeOnly(input, tokenizer);
            Console.WriteLine($"  tokenizer alone (single thread, CPU seconds): {tokOnly:F2} s");
            double? peerSeconds = peer ? PythonPeer(input, Path.Combine(shared, "tokenizers", "llama2", "tokenizer.model")) : null;
            if (peerSeconds is { } ps)
                Console.WriteLine($"  peer python3+sentencepiece (load + template + encode, no masks/dedup/writes): {ps:F2} s = {records / ps:F0} records/s; ratio ours/peer = {rps / (records / ps):F2}x");
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                bench = "data-prepare", records = stats.RecordsRead, seconds, records_per_s = rps, tokens = stats.Tokens.Total,
                peer = "python3+sentencepiece", peer_records_per_s = peerSeconds is { } p ? records / p : (double?)null,
                ratio = peerSeconds is { } p2 ? rps / (records / p2) : (double?)null,
            }));
            if (memory)
            {
                var big = Path.Combine(work, $"alpaca_{records * 4}.json");
                Replicate(sample, big, records * 4);
                var (s4, st4) = Time(big, tokenizerDir, Path.Combine(work, "out4"), tokenizer);
                long peak4 = Process.GetCurrentProcess().PeakWorkingSet64, heap4 = _peakHeap;
                Console.WriteLine($"memory: peak working set {peak1 / 1e6:F0} MB after {records} records ({new FileInfo(input).Length / 1e6:F0} MB input), " +
                    $"{peak4 / 1e6:F0} MB after {records * 4} records ({new FileInfo(big).Length / 1e6:F0} MB input, {s4:F2} s); " +
                    $"peak managed heap {heap1 / 1e6:F0} MB vs {heap4 / 1e6:F0} MB");
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    bench = "data-memory", records_small = records, peak_mb_small = peak1 / 1e6, records_large = st4.RecordsRead,
                    peak_mb_large = peak4 / 1e6, heap_mb_small = heap1 / 1e6, heap_mb_large = heap4 / 1e6, input_mb_small = new FileInfo(input).Length / 1e6, input_mb_large = new FileInfo(big).Length / 1e6,
                }));
            }
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static PrepareOptions Options(string input, string tokenizerDir, string outDir) =>
        new([new DataSource(input, DataFormat.Alpaca)], tokenizerDir, "alpaca", outDir, MaxSeqLen: 2048, Pack: true, SkipInvalid: true, Dedup: true, Force: true,
            ShardTokens: 1 << 20);   // 1M-token shards: both the small and the 4× run reach the shard bound

    /// <summary>Largest managed heap seen by the sampler during the last timed run (bytes).</summary>
    private static long _peakHeap;

    private static (double Seconds, PrepareStats Stats) Time(string input, string tokenizerDir, string outDir, ITokenizer tokenizer)
    {
        GC.Collect();
        _peakHeap = 0;
        using var sampler = new Timer(_ => _peakHeap = Math.Max(_peakHeap, GC.GetTotalMemory(false)), null, 0, 20);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var result = PreparePipeline.Run(Options(input, tokenizerDir, outDir), tokenizer);
        Console.WriteLine($"  (wall {sw.Elapsed.TotalSeconds:F2} s, process CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds:F2} s on {Environment.ProcessorCount} cores)");
        return (sw.Elapsed.TotalSeconds, result.Stats);
    }

    /// <summary>CPU seconds of the stages before tokenization: streaming load, validation and exact dedup; then rendering.</summary>
    private static (double Load, double Render) StageCosts(string input)
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var quality = new InstructTune.Data.Quality.QualityFilter(new InstructTune.Data.Quality.QualityOptions());
        var validator = new RecordValidator(InvalidPolicy.Skip);
        var records = quality.Apply(validator.Apply(DatasetLoader.Read(input, new LoadOptions(DataFormat.Alpaca)))).ToList();
        var load = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        var template = new AlpacaTemplate();
        long chars = 0;
        foreach (var r in records) chars += template.Render(r).CharSegments().Length;
        return (load, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
    }

    private static double TokenizeOnly(string input, ITokenizer tokenizer)
    {
        var template = new AlpacaTemplate();
        var texts = DatasetLoader.Read(input, new LoadOptions(DataFormat.Alpaca)).Where(i => i.Record != null).Select(i => template.Render(i.Record!).Text).ToList();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        foreach (var t in texts) tokenizer.Encode(t, true);
        return (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
    }

    /// <summary>
    /// Copy k of record i keeps its shape and length but varies its text: a copy number is put in the instruction
    /// and input, and words of the output are rotated, so exact dedup keeps them and tokens differ.
    /// </summary>
    public static void Replicate(string sample, string dest, int n)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(sample));
        var src = doc.RootElement.EnumerateArray().Select(e => (I: e.GetProperty("instruction").GetString()!, In: e.GetProperty("input").GetString()!, O: e.GetProperty("output").GetString()!)).ToArray();
        using var fs = File.Create(dest);
        using var w = new Utf8JsonWriter(fs);
        w.WriteStartArray();
        for (int i = 0; i < n; i++)
        {
            var (ins, inp, outp) = src[i % src.Length];
            int copy = i / src.Length;
            if (copy > 0)
            {
                ins = $"{ins} (variant {copy})";
                if (inp.Length > 0) inp = $"{inp} #{copy}";
                var words = outp.Split(' ');
                int r = copy % Math.Max(1, words.Length);
                outp = string.Join(' ', words[r..].Concat(words[..r]));
            }
            w.WriteStartObject();
            w.WriteString("instruction", ins);
            w.WriteString("input", inp);
            w.WriteString("output", outp);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static double? PythonPeer(string input, string spModel)
    {
        var script = Path.Combine(Path.GetTempPath(), "itune_data_peer.py");
        File.WriteAllText(script, """
import json, sys, time
import sentencepiece as spm
t0 = time.perf_counter()
sp = spm.SentencePieceProcessor(model_file=sys.argv[2])
A = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{}\n\n### Input:\n{}\n\n### Response:\n{}"
B = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{}\n\n### Response:\n{}"
t0 = time.perf_counter()
recs = json.load(open(sys.argv[1]))
n = 0
for r in recs:
    text = A.format(r["instruction"], r["input"], r["output"]) if r["input"] else B.format(r["instruction"], r["output"])
    n += len(sp.encode(text))
print(time.perf_counter() - t0)
""");
        try
        {
            var psi = new ProcessStartInfo("/usr/bin/python3", [script, input, spModel]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? double.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture) : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    private static int ArgInt(string[] args, string name, int dflt)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : dflt;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "InstructTune.sln"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}
