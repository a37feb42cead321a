using System.Diagnostics;
using System.Text;
using System.Text.Json;
using InstructTune.Tokenizers;

namespace InstructTune.Bench;

/// <summary>
/// <c>bench … -- tokenizers [--mb 10]</c> (alias <c>tokenize</c>): encode MB/s, single thread, on a corpus of at least --mb MB of real
/// instruction text (every string of ../shared/testdata/datasets, split into lines, repeated to size), for the
/// llama2 .model (BPE) and the T5-style unigram spiece.model against python3-sentencepiece and llama3 tokenizer.json against HF tokenizers (node), measured in
/// the same run; plus our batch encode on all cores. Human lines, then one JSON line per result.
/// Speeds are given per wall second and per CPU second of the process; the ratio uses CPU seconds, so that a shared,
/// loaded machine (where wall time depends on what else runs) still compares like with like.
/// </summary>
public static class TokenizerBench
{
    public static int Run(string[] args)
    {
        double mb = 10;
        for (int i = 0; i + 1 < args.Length; i++) if (args[i] == "--mb") mb = double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
        var root = FindRoot();
        var shared = InstructTune.Common.SharedTestData.Path();
        var lines = BuildCorpus(Path.Combine(shared, "datasets"), mb);
        var corpusPath = Path.Combine(Path.GetTempPath(), $"itune-tok-bench-{Environment.ProcessId}.txt");
        File.WriteAllText(corpusPath, string.Join("\n", lines), new UTF8Encoding(false));
        double bytes = lines.Sum(l => (double)System.Text.Encoding.UTF8.GetByteCount(l)) / 1e6;
        Console.WriteLine($"tokenizers bench: {lines.Count} lines, {bytes:F1} MB, {Environment.ProcessorCount} cores");
        try
        {
            var cases = new[]
            {
                ("llama2.model", Path.Combine(shared, "tokenizers", "llama2", "tokenizer.model"),
                 new[] { "/usr/bin/python3", Path.Combine(root, "bench", "peers", "tokenizers_spm_peer.py"), corpusPath, Path.Combine(shared, "tokenizers", "llama2", "tokenizer.model") }, 1.0),
                ("t5.unigram", Path.Combine(shared, "tokenizers", "spm-unigram-t5", "spiece.model"),
                 new[] { "/usr/bin/python3", Path.Combine(root, "bench", "peers", "tokenizers_spm_peer.py"), corpusPath, Path.Combine(shared, "tokenizers", "spm-unigram-t5", "spiece.model") }, 1.0),
                ("llama3.json", Path.Combine(shared, "tokenizers", "llama3", "tokenizer.json"),
                 new[] { "node", Path.Combine(root, "bench", "peers", "tokenizers_hf_peer.js"), corpusPath, Path.Combine(shared, "tokenizers", "llama3", "tokenizer.json") }, 0.8),
            };
            foreach (var (name, path, peerCmd, target) in cases)
            {
                var tok = TokenizerLoader.Load(path);
                var (ours, oursCpu, tokens) = Measure(tok, lines, bytes);
                var batch = MeasureBatch(TokenizerLoader.Load(path), lines, bytes); // fresh tokenizer: cold word cache
                var peer = RunPeer(peerCmd);
                double? ratio = peer.HasValue ? oursCpu / peer.Value.MbPerCpuS : null;
                Console.WriteLine($"  {name,-13} ours {oursCpu,6:F2} MB/cpu-s ({ours:F2} MB/s wall, {tokens} tokens)  peer {peer?.Name ?? "unavailable"} {peer?.MbPerCpuS,6:F2} MB/cpu-s ({peer?.MbPerS:F2} MB/s wall, {peer?.Tokens} tokens)  ratio {ratio:F2}x (target >= {target:F1}x)  batch/{Environment.ProcessorCount} cores {batch:F2} MB/s wall");
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    bench = "tokenizers", tokenizer = name, mb = Math.Round(bytes, 2), ours_mb_per_s = Math.Round(ours, 3),
                    ours_mb_per_cpu_s = Math.Round(oursCpu, 3),
                    peer = peer?.Name, peer_version = peer?.Version, peer_mb_per_s = peer.HasValue ? Math.Round(peer.Value.MbPerS, 3) : (double?)null,
                    peer_mb_per_cpu_s = peer.HasValue ? Math.Round(peer.Value.MbPerCpuS, 3) : (double?)null,
                    ratio = ratio.HasValue ? Math.Round(ratio.Value, 3) : (double?)null, target, tokens_ours = tokens, tokens_peer = peer?.Tokens,
                    batch_mb_per_s = Math.Round(batch, 3), cores = Environment.ProcessorCount,
                }));
            }
        }
        finally { File.Delete(corpusPath); }
        return 0;
    }

    private static (double MbPerS, double MbPerCpuS, long Tokens) Measure(ITokenizer tok, List<string> lines, double mb)
    {
        for (int i = 0; i < Math.Min(1000, lines.Count); i++) tok.Encode(lines[i]); // warm up (JIT, caches as the peers)
        long tokens = 0;
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        foreach (var l in lines) tokens += tok.Encode(l).Ids.Length;
        double wall = sw.Elapsed.TotalSeconds;
        proc.Refresh();
        double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds; // all threads: GC and JIT count against us
        return (mb / wall, mb / cpu, tokens);
    }

    private static double MeasureBatch(ITokenizer tok, List<string> lines, double mb)
    {
        var sw = Stopwatch.StartNew();
        tok.EncodeBatch(lines);
        return mb / sw.Elapsed.TotalSeconds;
    }

    private readonly record struct PeerResult(string Name, string? Version, double MbPerS, double MbPerCpuS, long Tokens);

    private static PeerResult? RunPeer(string[] cmd)
    {
        try
        {
            var psi = new ProcessStartInfo(cmd[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in cmd[1..]) psi.ArgumentList.Add(a);
            psi.Environment["RAYON_NUM_THREADS"] = "1";
            psi.Environment["TOKENIZERS_PARALLELISM"] = "false";
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEnd();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            var line = stdout.Split('\n').LastOrDefault(l => l.StartsWith('{'));
            if (p.ExitCode != 0 || line == null) { Console.Error.WriteLine($"peer {cmd[1]} failed: {stderr.Trim()}"); return null; }
            var r = JsonDocument.Parse(line).RootElement;
            return new PeerResult(r.GetProperty("peer").GetString()!, r.TryGetProperty("version", out var v) ? v.ToString() : null,
                r.GetProperty("mb_per_s").GetDouble(), r.GetProperty("mb_per_cpu_s").GetDouble(), r.GetProperty("tokens").GetInt64());
        }
        catch (System.ComponentModel.Win32Exception e) { Console.Error.WriteLine($"peer {cmd[0]} unavailable: {e.Message}"); return null; }
    }

    /// <summary>Every string value in the datasets' .json/.jsonl files, split at newlines, repeated to ≥ mb MB.</summary>
    private static List<string> BuildCorpus(string datasets, double mb)
    {
        var unique = new List<string>();
        foreach (var f in Directory.EnumerateFiles(datasets, "*.json*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var text = File.ReadAllText(f);
            IEnumerable<string> docs = f.EndsWith(".jsonl") ? text.Split('\n', StringSplitOptions.RemoveEmptyEntries) : [text];
            foreach (var d in docs)
            {
                try { Collect(JsonDocument.Parse(d).RootElement, unique); }
                catch (JsonException) { }
            }
        }
        var lines = new List<string>();
        double total = 0;
        while (total < mb * 1e6 && unique.Count > 0)
            foreach (var s in unique)
            {
                lines.Add(s); total += System.Text.Encoding.UTF8.GetByteCount(s);
                if (total >= mb * 1e6) break;
            }
        return lines;
    }

    private static void Collect(JsonElement e, List<string> output)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                foreach (var l in e.GetString()!.Split('\n')) if (l.Trim().Length > 0) output.Add(l);
                break;
            case JsonValueKind.Array: foreach (var x in e.EnumerateArray()) Collect(x, output); break;
            case JsonValueKind.Object: foreach (var p in e.EnumerateObject()) Collect(p.Value, output); break;
        }
    }

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "InstructTune.sln"))) return d.FullName;
        throw new InvalidOperationException("InstructTune.sln not found");
    }
}
