using System.Collections;
using System.Globalization;
using System.Text;
using YamlDotNet.RepresentationModel;

namespace InstructTune.Training.Config;

/// <summary>
/// Reads a YAML config into a typed record, then applies command-line overrides `section.key=value`
/// (values parsed as YAML, so lists work: `lora.target_modules=[q_proj,v_proj]`). Writes the effective
/// config back as YAML for the start-of-run print and for every checkpoint.
/// </summary>
public static class ConfigLoader
{
    /// <summary>The file's keys, then the overrides in order; errors name the file and line or the override.</summary>
    public static T Load<T>(string? yamlPath, IEnumerable<string>? overrides = null) where T : new()
    {
        YamlMappingNode root = new();
        string? source = null;
        if (!string.IsNullOrEmpty(yamlPath))
        {
            if (!File.Exists(yamlPath)) throw new ConfigException($"config file not found: {yamlPath}");
            source = yamlPath;
            root = Parse(YamlDepthGuard.ReadFile(yamlPath), yamlPath);
        }
        return BindWithOverrides<T>(root, source, overrides);
    }

    public static T LoadFromString<T>(string yaml, IEnumerable<string>? overrides = null) where T : new() =>
        BindWithOverrides<T>(Parse(yaml, "<string>"), "<string>", overrides);

    private static T BindWithOverrides<T>(YamlMappingNode root, string? source, IEnumerable<string>? overrides) where T : new()
    {
        var origin = new Dictionary<YamlNode, string>(ReferenceEqualityComparer.Instance);
        foreach (var item in overrides ?? [])
            ApplyOverride(root, item, origin);
        return ConfigBinder.Bind<T>(root, source, origin);
    }

    private static YamlMappingNode Parse(string yaml, string source)
    {
        YamlDepthGuard.Check(yaml, source);
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new ConfigException($"{source}:{e.Start.Line}:{e.Start.Column}: malformed YAML: {e.InnerException?.Message ?? e.Message}");
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // YamlDotNet reports some malformed documents this way (found by the fuzz properties).
            throw new ConfigException($"{source}: malformed YAML ({e.Message})");
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
            return new YamlMappingNode();
        return stream.Documents[0].RootNode as YamlMappingNode
            ?? throw new ConfigException($"{source}: the top level must be a mapping of sections");
    }

    /// <summary>Applies `a.b.c=value` to the YAML tree, creating intermediate mappings as needed.</summary>
    public static void ApplyOverride(YamlMappingNode root, string assignment) => ApplyOverride(root, assignment, null);

    private static void ApplyOverride(YamlMappingNode root, string assignment, Dictionary<YamlNode, string>? origin)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new ConfigException($"override '{assignment}' is not of the form key=value (e.g. training.learning_rate=1e-4)");
        var keys = assignment[..eq].Trim().Split('.');
        if (keys.Any(k => k.Length == 0)) throw new ConfigException($"override '{assignment}': '{assignment[..eq]}' is not a dotted key");
        var valueText = assignment[(eq + 1)..];
        var node = root;
        for (int i = 0; i < keys.Length - 1; i++)
        {
            var key = new YamlScalarNode(keys[i]);
            if (!node.Children.TryGetValue(key, out var child))
            {
                node.Children[key] = child = new YamlMappingNode();
                origin?.TryAdd(key, assignment);
            }
            node = child as YamlMappingNode
                ?? throw new ConfigException($"override '{assignment}': '{string.Join('.', keys[..(i + 1)])}' is not a section",
                    string.Join('.', keys[..(i + 1)]));
        }
        var leafKey = new YamlScalarNode(keys[^1]);
        var value = ParseValue(valueText, assignment);
        node.Children.Remove(leafKey);
        node.Children[leafKey] = value;
        if (origin != null) { origin[leafKey] = assignment; MarkTree(value, assignment, origin); }
    }

    private static void MarkTree(YamlNode node, string assignment, Dictionary<YamlNode, string> origin)
    {
        origin[node] = assignment;
        if (node is YamlSequenceNode seq) foreach (var c in seq.Children) MarkTree(c, assignment, origin);
        if (node is YamlMappingNode map) foreach (var (k, v) in map.Children) { origin[k] = assignment; MarkTree(v, assignment, origin); }
    }

    private static YamlNode ParseValue(string text, string assignment)
    {
        var trimmed = text.Trim();
        if (trimmed.StartsWith('[') || trimmed.StartsWith('{'))
        {
            var yaml = "v: " + trimmed;
            var stream = new YamlStream();
            string key = assignment[..assignment.IndexOf('=')].Trim();
            string what = $"override '{assignment}': the value '{trimmed}' is not a valid YAML list or mapping";
            try
            {
                YamlDepthGuard.Check(yaml, $"override '{assignment}'");
                stream.Load(new StringReader(yaml));
            }
            catch (Exception e) when (e is YamlDotNet.Core.YamlException or ArgumentException or InvalidOperationException)
            {
                throw new ConfigException($"{what} ({e.InnerException?.Message ?? e.Message}); write e.g. [q_proj, v_proj]", key);
            }
            catch (ConfigException e) when (e.Message.Contains("malformed YAML"))
            {
                throw new ConfigException($"{what}; write e.g. [q_proj, v_proj]", key);
            }
            return ((YamlMappingNode)stream.Documents[0].RootNode).Children[new YamlScalarNode("v")];
        }
        return new YamlScalarNode(text);
    }

    /// <summary>The config as YAML with snake_case keys, in declaration order; round-trips through Load.</summary>
    public static string ToYaml(object config)
    {
        var sb = new StringBuilder();
        Write(sb, config, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object obj, int indent)
    {
        foreach (var (name, property) in ConfigBinder.WritableProperties(obj.GetType()))
        {
            var value = property.GetValue(obj);
            var pad = new string(' ', indent);
            if (value != null && ConfigBinder.IsConfigRecord(value.GetType()))
            {
                sb.Append(pad).Append(name).Append(":\n");
                Write(sb, value, indent + 2);
            }
            else sb.Append(pad).Append(name).Append(": ").Append(Scalar(value)).Append('\n');
        }
    }

    /// <summary>One value as a YAML flow scalar (lists and maps in flow style).</summary>
    public static string ToYamlScalar(object? value) => Scalar(value);

    private static string Scalar(object? value) => value switch
    {
        null => "null",
        string s => Quote(s),
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        Enum e => ConfigBinder.SnakeCase(e.ToString()),
        _ when value.GetType() is var t && ConfigBinder.IsConfigRecord(t) =>
            "{" + string.Join(", ", ConfigBinder.WritableProperties(t).Select(p => $"{p.Key}: {Scalar(p.Value.GetValue(value))}")) + "}",
        IDictionary dict => "{" + string.Join(", ", dict.Keys.Cast<object>().Select(k => $"{Quote(k.ToString()!)}: {Scalar(dict[k])}")) + "}",
        _ when ConfigBinder.IsConfigRecord(value.GetType()) =>   // a record inside a list (data.datasets): a flow mapping
            "{" + string.Join(", ", ConfigBinder.WritableProperties(value.GetType()).Select(p => $"{p.Key}: {Scalar(p.Value.GetValue(value))}")) + "}",
        IEnumerable list => "[" + string.Join(", ", list.Cast<object>().Select(Scalar)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Quote(string s) =>
        "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n") + "\"";
}
