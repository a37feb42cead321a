using System.Text;
using FsCheck;
using FsCheck.Fluent;
using InstructTune.Checkpoints;
using InstructTune.Common;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;
using InstructTune.Templates.Jinja;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Hostile;

/// <summary>
/// Property-based fuzzing (FsCheck generators, fixed seed) of the four readers that take untrusted input: dataset
/// readers, config binder, chat-template renderer, safetensors reader. Property: every input ends in a value or in an
/// <see cref="InputException"/> / <see cref="InvalidDataException"/> — never any other exception (an unhandled crash).
/// 1,000 cases per reader in CI; the Slow variant runs 10×.
/// </summary>
public class FuzzProperties
{
    private const ulong Seed = 20261207;
    public const int Cases = 1000;

    /// <summary>Draws <paramref name="count"/> values from <paramref name="gen"/> with a fixed seed and checks each.</summary>
    internal static int Check<T>(Gen<T> gen, int count, Action<T> property, string what)
    {
        var failures = new List<string>();
        int n = 0;
        foreach (var value in Gen.Sample(gen, count, new Rnd(Seed), 30))
        {
            n++;
            try { property(value); }
            catch (Exception e) when (e is InputException or InvalidDataException) { }
            catch (Exception e) { if (failures.Count < 5) failures.Add($"{e.GetType().Name}: {e.Message} ← {Show(value)}"); }
        }
        Assert.True(failures.Count == 0, $"{what}: unhandled exceptions:\n" + string.Join("\n", failures));
        return n;
    }

    private static string Show(object? v) { var s = v?.ToString() ?? "null"; return s.Length > 300 ? s[..300] + "…" : s; }

    /// <summary>A valid text mutated 1–4 times: byte-range deletion, insertion of JSON/CSV/escape fragments, truncation.</summary>
    internal static Gen<string> Mutated(string valid, string[] fragments) =>
        from steps in Gen.Choose(1, 4)
        from ops in Gen.ListOf(Gen.Zip(Gen.Choose(0, 3), Gen.Zip(Gen.Choose(0, 1 << 20), Gen.Elements(fragments))), steps)
        select ops.Aggregate(valid, (s, op) =>
        {
            int pos = s.Length == 0 ? 0 : op.Item2.Item1 % (s.Length + 1);
            return op.Item1 switch
            {
                0 => s.Remove(pos, Math.Min(s.Length - pos, 1 + op.Item2.Item1 % 7)),
                1 or 2 => s.Insert(pos, op.Item2.Item2),
                _ => s[..pos],
            };
        });

    private static readonly string[] JsonFragments =
        ["{", "}", "[", "]", ",", ":", "\"", "\\", "\\ud800", "\\udc00", "\\u12", "\n", "\"output\":", "null", "1e999", "-0", "\u00ff", "\ud83d\ude00", "\"\"", "true", "{\"instruction\":\"x\"", "]]]]", "[[[["];

    public static int DatasetReaders(int cases)
    {
        const string alpaca = "[{\"instruction\":\"Add 2 and 3.\",\"input\":\"\",\"output\":\"5\"},{\"instruction\":\"Say hi\",\"output\":\"hi\"}]";
        const string jsonl = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}\n{\"conversations\":[{\"from\":\"human\",\"value\":\"a\"},{\"from\":\"gpt\",\"value\":\"b\"}]}\n";
        const string csv = "instruction,input,output\nAdd,\"1, 2\",3\n\"Two\nlines\",,ok\n";
        int n = 0;
        foreach (var (valid, format) in new[] { (alpaca, DataFormat.Alpaca), (jsonl, DataFormat.Messages), (jsonl, DataFormat.ShareGpt) })
            n += Check(Mutated(valid, JsonFragments), cases, text =>
            {
                using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
                foreach (var item in DatasetLoader.Read(stream, "fuzz.json", new LoadOptions(format, MaxStringBytes: 64)))
                    Assert.True(item.Record is null != (item.Rejection is null), "a load item must be a record or a rejection");
            }, $"dataset reader ({format})");
        var dir = Directory.CreateTempSubdirectory("fuzz-csv").FullName;
        n += Check(Mutated(csv, [",", "\"", "\n", "\r\n", "a,b,c,d", "instruction", "\u00ff", "\ud800"]), cases, text =>
        {
            var path = Path.Combine(dir, "f.csv");
            File.WriteAllBytes(path, new UTF8Encoding(false, false).GetBytes(text));   // a lone surrogate becomes U+FFFD bytes
            foreach (var item in DatasetLoader.Read(path, new LoadOptions(DataFormat.Csv)))
                Assert.True(item.Record is null != (item.Rejection is null));
        }, "dataset reader (csv)");
        return n;
    }

    public static int ConfigBinder(int cases)
    {
        const string valid = "training:\n  method: lora\n  learning_rate: 0.001\n  max_steps: 10\nlora:\n  rank: 8\n  target_modules: [q_proj, v_proj]\ndata:\n  max_seq_len: 128\n";
        string[] fragments = [":", "\n", "  ", "- ", "[", "]", "{", "}", "&a", "*a", "!!int", "'", "\"", "#", "-1", "1e999", "nan", "lora:", "rank:", "~", "? ", "|", ">", "\t", "%YAML 1.2\n---\n"];
        var overrides = Gen.Elements("lora.rank=[", "training.max_steps=-1", "lora.target_modules=[q_proj", "a.b.c=1", "=1", "training=1", "lora.rank={a: [}", "training.learning_rate=x");
        return Check(Gen.Zip(Mutated(valid, fragments), Gen.ListOf(overrides, 2)), cases,
            t => ConfigLoader.LoadFromString<TrainConfig>(t.Item1, t.Item2), "config binder");
    }

    public static int TemplateRenderer(int cases)
    {
        string[] pieces = ["{{ ", " }}", "{% ", " %}", "for m in messages", "endfor", "if ", "endif", "else", "set x = ", "macro f(n)", "endmacro",
            "f(1)", "m.content", "m['role']", "|upper", "|length", "|join(',')", "|center(99999999999)", "|indent(4)", "|tojson", "|replace('a','aa')",
            "'a'", "\"b\"", "1", "99999999999999999999", "2**62", "**", "*", "+", "-", "//", "%", "(", ")", "[", "]", "{", "}", ",", ":", ".", "~",
            "range(5)", "loop.index", "namespace(a=1)", "raise_exception('x')", " is defined", " not ", " and ", " or ", "\n", "x", "messages"];
        var gen = from parts in Gen.ListOf(Gen.Elements(pieces), 12) select string.Concat(parts);
        var limits = new RenderLimits { MaxLoopIterations = 10_000, MaxOutputLength = 100_000, MaxCalls = 10_000 };
        var vars = new Dictionary<string, object?>
        {
            ["messages"] = new List<object?> { new Dictionary<object, object?> { ["role"] = "user", ["content"] = "hi" } },
            ["bos_token"] = "<s>",
        };
        return Check(gen, cases, source => new JinjaTemplate(source) { Limits = limits }.Render(vars), "chat-template renderer");
    }

    public static int SafetensorsReader(int cases)
    {
        var dir = Directory.CreateTempSubdirectory("fuzz-st").FullName;
        var valid = Path.Combine(dir, "valid.safetensors");
        SafetensorsWriter.Write(valid, [TensorToWrite.FromF32("a", DType.F32, [2, 3], [1, 2, 3, 4, 5, 6]), TensorToWrite.FromF32("b", DType.F32, [4], [1, 2, 3, 4])]);
        var bytes = File.ReadAllBytes(valid);
        var gen = from ops in Gen.ListOf(Gen.Zip(Gen.Choose(0, 3), Gen.Zip(Gen.Choose(0, bytes.Length + 16), Gen.Choose(0, 255))), 3)
                  select ops.Aggregate(bytes, (b, op) => op.Item1 switch
                  {
                      0 or 1 => b.Length == 0 ? b : Set(b, op.Item2.Item1 % b.Length, (byte)op.Item2.Item2),                 // flip a byte
                      2 => b[..Math.Min(b.Length, op.Item2.Item1)],                                          // truncate
                      _ => [.. b, .. Enumerable.Repeat((byte)op.Item2.Item2, op.Item2.Item1 % 17)],          // trailing bytes
                  });
        var path = Path.Combine(dir, "fuzz.safetensors");
        return Check(gen, cases, data =>
        {
            File.WriteAllBytes(path, data);
            using var f = SafetensorsFile.Open(path);
            foreach (var name in f.Tensors.Keys) f.ReadF32(name);
        }, "safetensors reader");
    }

    private static byte[] Set(byte[] b, int i, byte v) { if (b.Length == 0) return b; var c = (byte[])b.Clone(); c[i] = v; return c; }

    [Fact] public void DatasetReadersNeverThrowUnhandled() => Assert.Equal(4 * Cases, DatasetReaders(Cases));
    [Fact] public void ConfigBinderNeverThrowsUnhandled() => Assert.Equal(Cases, ConfigBinder(Cases));
    [Fact] public void TemplateRendererNeverThrowsUnhandled() => Assert.Equal(Cases, TemplateRenderer(Cases));
    [Fact] public void SafetensorsReaderNeverThrowsUnhandled() => Assert.Equal(Cases, SafetensorsReader(Cases));

    [Fact]
    [Trait("Category", "Slow")]
    public void AllReadersTenTimesTheCases()
    {
        DatasetReaders(10 * Cases);
        ConfigBinder(10 * Cases);
        TemplateRenderer(10 * Cases);
        SafetensorsReader(10 * Cases);
    }
}
