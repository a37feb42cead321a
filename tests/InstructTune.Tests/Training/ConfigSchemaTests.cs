using System.Reflection;
using System.Reflection.Emit;
using System.Text.Json;
using InstructTune.Cli;
using InstructTune.Evaluation.Judge;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Training;

/// <summary>
/// Finds which config-record getters the compiled code calls, by decoding the IL of every method of the given
/// assemblies (call/callvirt/ldftn operands). Calls from the config machinery itself (namespace
/// InstructTune.Training.Config: binder, loader, schema, the records) do not count: reading a key to bind, print
/// or schema-list it is not using it.
/// </summary>
internal static class GetterUsage
{
    private static readonly OpCode[] OneByte = new OpCode[256], TwoByte = new OpCode[256];

    static GetterUsage()
    {
        foreach (var f in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var op = (OpCode)f.GetValue(null)!;
            if (op.Size == 1) OneByte[op.Value & 0xFF] = op; else TwoByte[op.Value & 0xFF] = op;
        }
    }

    public static HashSet<(Module, int)> CalledMethods(IEnumerable<Assembly> assemblies)
    {
        var called = new HashSet<(Module, int)>();
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var asm in assemblies)
        foreach (var type in asm.GetTypes())
        {
            if (IsConfigMachinery(type)) continue;
            foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                byte[]? il;
                try { il = method.GetMethodBody()?.GetILAsByteArray(); } catch (Exception) { continue; }
                if (il == null) continue;
                for (int i = 0; i < il.Length;)
                {
                    OpCode op = il[i] == 0xFE ? TwoByte[il[++i]] : OneByte[il[i]];
                    i++;
                    int size = op.OperandType switch
                    {
                        OperandType.InlineNone => 0,
                        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                        OperandType.InlineVar => 2,
                        OperandType.InlineI8 or OperandType.InlineR => 8,
                        OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                        _ => 4,
                    };
                    if (op.OperandType == OperandType.InlineMethod)
                    {
                        int token = BitConverter.ToInt32(il, i);
                        try
                        {
                            var target = method.Module.ResolveMethod(token,
                                method.DeclaringType?.IsGenericType == true ? method.DeclaringType.GetGenericArguments() : null,
                                method.IsGenericMethod ? method.GetGenericArguments() : null);
                            if (target != null) called.Add((target.Module, target.MetadataToken));
                        }
                        catch (Exception) { /* a generic-context token we cannot resolve: not a config getter */ }
                    }
                    i += size;
                }
            }
        }
        return called;
    }

    private static bool IsConfigMachinery(Type type)
    {
        for (var t = type; t != null; t = t.DeclaringType)
            if (t.Namespace == typeof(ConfigBinder).Namespace) return true;
        return false;
    }

    /// <summary>Keys of <paramref name="root"/> whose getter no method of <paramref name="assemblies"/> calls.</summary>
    public static List<string> UnreadKeys(Type root, IEnumerable<Assembly> assemblies)
    {
        var called = CalledMethods(assemblies);
        return ConfigSchema.Keys(root).Where(k => !k.IsSection)
            .Where(k => !called.Contains((k.Property.GetMethod!.Module, k.Property.GetMethod.MetadataToken)))
            .Select(k => k.Key).ToList();
    }
}

/// <summary>A record with one key that is read and one that is not: the usage check must tell them apart.</summary>
public sealed class ProbeSection
{
    [ConfigKey("read by ProbeReader")] public int Used { get; set; }
    [ConfigKey("read by nobody")] public int Never { get; set; }
}

public static class ProbeReader
{
    public static int Read(ProbeSection s) => s.Used * 2;
}

[Collection("Console")]
public class ConfigSchemaTests
{
    private static readonly Assembly[] Product = [typeof(TrainConfig).Assembly, typeof(CliApp).Assembly];

    public static TheoryData<string> Roots() => new() { nameof(TrainConfig), nameof(JudgeSection) };

    private static Type RootType(string name) => name == nameof(TrainConfig) ? typeof(TrainConfig) : typeof(JudgeSection);

    [Theory, MemberData(nameof(Roots))]
    public void EveryKeyIsDocumented(string root)
    {
        foreach (var k in ConfigSchema.Keys(RootType(root)))
        {
            var attr = k.Property.GetCustomAttribute<ConfigKeyAttribute>();
            Assert.True(attr != null, $"{k.Key} has no [ConfigKey] description");
            Assert.True(attr!.Description.Trim().Length >= 8, $"{k.Key}: description too short");
        }
    }

    [Theory, MemberData(nameof(Roots))]
    public void EveryKeyIsReadByTheProduct(string root)
    {
        var unread = GetterUsage.UnreadKeys(RootType(root), Product);
        // Keys accepted and not read yet; must stay empty (a key not wired is refused in FineTuneRecipe.Validate, which reads it).
        string[] pending = [];
        Assert.True(unread.SequenceEqual(pending), "config keys accepted and never read: " + string.Join(", ", unread.Except(pending)));
    }

    [Fact]
    public void UsageCheckSeesAnUnreadKey()
    {
        var unread = GetterUsage.UnreadKeys(typeof(ProbeSection), [typeof(ProbeSection).Assembly]);
        Assert.Equal(["never"], unread);
    }

    private static (int Rc, string Out, string Err) Cli(params string[] args) => TestConsole.Run(args);

    [Fact]
    public void SchemaCommandListsEveryKeyWithTypeDefaultAndRange()
    {
        var (rc, text, _) = Cli("config", "schema");
        Assert.Equal(0, rc);
        foreach (var k in ConfigSchema.Keys(typeof(TrainConfig)))
            Assert.Contains(k.IsSection ? $"\n{k.Key}: " : $"  {k.Key}  (", "\n" + text);
        Assert.Contains("training.adam_beta1  (number; default 0.9; allowed [0, 1))", text);
        Assert.Contains("lora.alpha  (number; default 16; allowed > 0)", text);

        (rc, var json, _) = Cli("config", "schema", "--json");
        Assert.Equal(0, rc);
        using var doc = JsonDocument.Parse(json);
        var keys = doc.RootElement.EnumerateArray().Select(e => e.GetProperty("key").GetString()).ToHashSet();
        Assert.Contains("training.warmup_steps", keys);
        Assert.Equal(ConfigSchema.Keys(typeof(TrainConfig)).Count, keys.Count);

        (rc, text, _) = Cli("config", "schema", "--judge");
        Assert.Equal(0, rc);
        Assert.Contains("max_attempts  (integer; default 4; allowed ≥ 1)", text);
    }

    // The seven out-of-range values of issue 12, each refused naming key, value and allowed range.
    [Theory]
    [InlineData("training.warmup_steps=-5", "-5", "≥ 0")]
    [InlineData("training.adam_beta1=1.5", "1.5", "[0, 1)")]
    [InlineData("training.max_grad_norm=-1", "-1", "≥ 0")]
    [InlineData("training.weight_decay=-1", "-1", "≥ 0")]
    [InlineData("lora.alpha=-8", "-8", "> 0")]
    [InlineData("loss.label_smoothing=2", "2", "[0, 1)")]
    [InlineData("training.neftune_alpha=-1", "-1", "≥ 0")]
    public void OutOfRangeValuesAreRefusedNamingKeyValueAndRange(string assignment, string value, string range)
    {
        var key = assignment[..assignment.IndexOf('=')];
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFromString<TrainConfig>("", [assignment]));
        Assert.Equal($"override '{assignment}': config key '{key}': {value} is out of range (allowed {range})", error.Message);
        Assert.Equal(key, error.Key);

        // The same value in a file names file and line.
        var section = key[..key.IndexOf('.')];
        var path = Path.Combine(Directory.CreateTempSubdirectory("itune-cfg").FullName, "r.yaml");
        File.WriteAllText(path, $"{section}:\n  {key[(section.Length + 1)..]}: {value}\n");
        error = Assert.Throws<ConfigException>(() => ConfigLoader.Load<TrainConfig>(path));
        Assert.Equal($"{path}:2: config key '{key}': {value} is out of range (allowed {range})", error.Message);

        var (rc, _, err) = Cli("config", "validate", path);
        Assert.Equal(2, rc);
        Assert.Contains($"config key '{key}': {value} is out of range (allowed {range})", err);
    }

    [Fact]
    public void ElementsOfListsAndMapsAreRangeChecked()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFromString<TrainConfig>("loss:\n  task_weights: {a: 1, b: -2}\n"));
        Assert.Contains("config key 'loss.task_weights.b': -2 is out of range (allowed ≥ 0)", error.Message);
        Assert.Contains("<string>:2:", error.Message);
    }

    [Theory]
    [InlineData("lora.target_modules=[q_proj", "not a valid YAML list or mapping")]
    [InlineData("training.epochs=many", "config key 'training.epochs': expected an integer, got 'many'")]
    [InlineData("training.lr=0.1", "unknown config key 'training.lr'")]
    [InlineData("training", "is not of the form key=value")]
    [InlineData("training..epochs=1", "is not a dotted key")]
    public void OverrideErrorsNameTheOverride(string assignment, string what)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFromString<TrainConfig>("training:\n  epochs: 2\n", [assignment]));
        Assert.Contains($"override '{assignment}'", error.Message);
        Assert.Contains(what, error.Message);
    }

    [Fact]
    public void ValidateAcceptsAGoodFileAndRefusesCrossKeyRules()
    {
        var dir = Directory.CreateTempSubdirectory("itune-cfg").FullName;
        var path = Path.Combine(dir, "ok.yaml");
        File.WriteAllText(path, "training:\n  learning_rate: 1e-4\nlora:\n  rank: 4\n");
        var (rc, output, _) = Cli("config", "validate", path);
        Assert.Equal(0, rc);
        Assert.Contains("valid", output);
        (rc, _, var err) = Cli("config", "validate", path, "loss.ewc_reference_path=ref.jsonl");
        Assert.Equal(2, rc);
        Assert.Contains("loss.ewc_reference_path: needs loss.ewc_lambda > 0", err);
        (rc, _, err) = Cli("config", "validate", path, "loss.ewc_reference_path=ref.safetensors", "loss.ewc_lambda=10");
        Assert.Equal(2, rc);
        Assert.Contains("loss.ewc_reference_path: 'ref.safetensors' does not exist", err);
        (rc, _, err) = Cli("config", "validate", path, "loss.lambda_instruction=0");
        Assert.Equal(2, rc);
        Assert.Contains("nothing to learn", err);
    }
}
