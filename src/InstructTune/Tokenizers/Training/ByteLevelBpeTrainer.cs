using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace InstructTune.Tokenizers.Training;

/// <summary>Settings of <see cref="ByteLevelBpeTrainer"/>. Special tokens take the first ids, in this order.</summary>
public sealed record BpeTrainerOptions(int VocabSize, int MinFrequency = 2, string Bos = "<s>", string Eos = "</s>",
                                       string Pad = "<pad>", int ModelMaxLength = 2048);

/// <summary>
/// Learns a byte-level BPE (GPT-2 layout: ByteLevel pre-tokenizer with the GPT-2 regex, the 256 byte symbols as the
/// initial alphabet) and writes tokenizer.json + tokenizer_config.json that Hugging Face tokenizers loads.
/// Each step merges the most frequent adjacent pair over the word counts (ties: the smaller (left, right) id pair,
/// so training is deterministic); pair counts are updated incrementally in the words that contain the pair.
/// </summary>
public static class ByteLevelBpeTrainer
{
    public sealed record Result(List<string> Vocab, List<(string Left, string Right)> Merges, string[] Specials);

    public static Result Train(IEnumerable<string> lines, BpeTrainerOptions o)
    {
        string[] specials = [o.Bos, o.Eos, o.Pad];
        if (o.VocabSize < specials.Length + 256)
            throw new ArgumentException($"--vocab-size {o.VocabSize} is below the {specials.Length + 256} special and byte tokens");
        // 1. Word counts over the GPT-2 pre-tokenization, each word as ByteLevel characters.
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var pieces = new List<(int, int)>();
        var bytes = new List<byte>();
        foreach (var raw in lines)
        {
            var line = UnicodeClass.ReplaceLoneSurrogates(raw);
            pieces.Clear();
            SplitPatterns.FindGpt2(line, pieces);
            foreach (var (s, e) in pieces)
            {
                var w = ToByteLevel(line.AsSpan(s, e - s));
                counts[w] = counts.GetValueOrDefault(w) + 1;
            }
        }
        var vocab = new List<string>(specials);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < specials.Length; i++) ids[specials[i]] = i;
        for (int b = 0; b < 256; b++) { var c = ByteLevelAlphabet.ByteToChar((byte)b).ToString(); ids[c] = vocab.Count; vocab.Add(c); }

        // 2. Words as symbol-id arrays; pair → count and pair → words holding it.
        var words = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (Symbols: kv.Key.Select(c => ids[c.ToString()]).ToList(), Count: kv.Value)).ToList();
        var pairCount = new Dictionary<long, long>();
        var where = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < words.Count; w++) AddPairs(words[w].Symbols, words[w].Count, w, pairCount, where, +1);
        var heap = new PriorityQueue<long, (long NegCount, long Pair)>();
        foreach (var (p, c) in pairCount) heap.Enqueue(p, (-c, p));

        var merges = new List<(string, string)>();
        while (vocab.Count < o.VocabSize && heap.TryDequeue(out long pair, out var prio))
        {
            long count = pairCount.GetValueOrDefault(pair);
            if (count != -prio.NegCount) { if (count > 0) heap.Enqueue(pair, (-count, pair)); continue; } // stale
            if (count < Math.Max(1, o.MinFrequency)) break;
            int left = (int)(pair >> 32), right = (int)pair;
            string merged = vocab[left] + vocab[right];
            if (!ids.TryGetValue(merged, out int newId)) { newId = vocab.Count; ids[merged] = newId; vocab.Add(merged); }
            merges.Add((vocab[left], vocab[right]));
            var touched = new HashSet<long>();
            foreach (int w in where[pair].ToArray())
            {
                var (sym, wc) = words[w];
                AddPairs(sym, wc, w, pairCount, where, -1, touched);
                for (int i = 0; i + 1 < sym.Count; i++)
                    if (sym[i] == left && sym[i + 1] == right) { sym[i] = newId; sym.RemoveAt(i + 1); }
                AddPairs(sym, wc, w, pairCount, where, +1, touched);
            }
            foreach (var p in touched)
                if (pairCount.GetValueOrDefault(p) > 0) heap.Enqueue(p, (-pairCount[p], p));
        }
        return new Result(vocab, merges, specials);
    }

    private static void AddPairs(List<int> sym, int wc, int w, Dictionary<long, long> pairCount,
                                 Dictionary<long, HashSet<int>> where, int sign, HashSet<long>? touched = null)
    {
        for (int i = 0; i + 1 < sym.Count; i++)
        {
            long p = ((long)sym[i] << 32) | (uint)sym[i + 1];
            pairCount[p] = pairCount.GetValueOrDefault(p) + sign * wc;
            if (sign > 0) { if (!where.TryGetValue(p, out var set)) where[p] = set = new HashSet<int>(); set.Add(w); }
            touched?.Add(p);
        }
    }

    private static string ToByteLevel(ReadOnlySpan<char> s)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(s.ToArray());
        var sb = new StringBuilder(bytes.Length);
        foreach (var b in bytes) sb.Append(ByteLevelAlphabet.ByteToChar(b));
        return sb.ToString();
    }

    /// <summary>Writes dir/tokenizer.json and dir/tokenizer_config.json, each atomically (temp file, flush, rename).</summary>
    public static void Save(Result r, BpeTrainerOptions o, string dir)
    {
        Directory.CreateDirectory(dir);
        var opts = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        AtomicFile.Write(Path.Combine(dir, "tokenizer.json"), stream =>
        {
            using var w = new Utf8JsonWriter(stream, opts);
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation"); w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            for (int i = 0; i < r.Specials.Length; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", i); w.WriteString("content", r.Specials[i]);
                w.WriteBoolean("single_word", false); w.WriteBoolean("lstrip", false); w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false); w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNull("normalizer");
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "ByteLevel"); w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", true); w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
            w.WriteStartObject("post_processor");
            w.WriteString("type", "TemplateProcessing");
            WriteTemplate(w, "single", [(o.Bos, 0, true), ("A", 0, false)]);
            WriteTemplate(w, "pair", [(o.Bos, 0, true), ("A", 0, false), (o.Bos, 1, true), ("B", 1, false)]);
            w.WriteStartObject("special_tokens");
            w.WriteStartObject(o.Bos);
            w.WriteString("id", o.Bos);
            w.WriteStartArray("ids"); w.WriteNumberValue(0); w.WriteEndArray();
            w.WriteStartArray("tokens"); w.WriteStringValue(o.Bos); w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel"); w.WriteBoolean("add_prefix_space", true);
            w.WriteBoolean("trim_offsets", true); w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout"); w.WriteNull("unk_token"); w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", false); w.WriteBoolean("byte_fallback", false); w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            for (int i = 0; i < r.Vocab.Count; i++) w.WriteNumber(r.Vocab[i], i);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (a, b) in r.Merges) { w.WriteStartArray(); w.WriteStringValue(a); w.WriteStringValue(b); w.WriteEndArray(); }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        });
        AtomicFile.Write(Path.Combine(dir, "tokenizer_config.json"), stream =>
        {
            using var w = new Utf8JsonWriter(stream, opts);
            w.WriteStartObject();
            w.WriteBoolean("add_bos_token", true); w.WriteBoolean("add_eos_token", false);
            w.WriteString("bos_token", o.Bos); w.WriteString("eos_token", o.Eos); w.WriteString("pad_token", o.Pad);
            w.WriteNull("unk_token");
            w.WriteBoolean("clean_up_tokenization_spaces", false);
            w.WriteNumber("model_max_length", o.ModelMaxLength);
            w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            w.WriteEndObject();
        });
    }

    private static void WriteTemplate(Utf8JsonWriter w, string name, (string Id, int TypeId, bool Special)[] items)
    {
        w.WriteStartArray(name);
        foreach (var (id, typeId, special) in items)
        {
            w.WriteStartObject();
            w.WriteStartObject(special ? "SpecialToken" : "Sequence");
            w.WriteString("id", id); w.WriteNumber("type_id", typeId);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}

/// <summary>Writes a file via a temp file in the same folder, flushed to disk, then renamed over the target (see <see cref="Common.OutputFile"/>).</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write) => Common.OutputFile.Write(path, fs => write(fs));
}
