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
    public static T Load<T>(string? yamlPath, IEnumerable<string>? overrides = null) where T : new()
    {
        YamlMappingNode root = new();
        if (!string.IsNullOrEmpty(yamlPath))
        {
            if (!File.Exists(yamlPath)) throw new ConfigException($"config file not found: {yamlPath}");
            root = Parse(File.ReadAllText(yamlPath), yamlPath);
        }
        foreach (var item in overrides ?? [])
            ApplyOverride(root, item);
        return ConfigBinder.Bind<T>(root);
    }

    public static T LoadFromString<T>(string yaml, IEnumerable<string>? overrides = null) where T : new()
    {
        var root = Parse(yaml, "<string>");
        foreach (var item in overrides ?? []) ApplyOverride(root, item);
        return ConfigBinder.Bind<T>(root);
    }

    private static YamlMappingNode Parse(string yaml, string source)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new ConfigException($"{source}:{e.Start.Line}:{e.Start.Column}: malformed YAML: {e.InnerException?.Message ?? e.Message}");
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
            return new YamlMappingNode();
        return stream.Documents[0].RootNode as YamlMappingNode
            ?? throw new ConfigException($"{source}: the top level must be a mapping of sections");
    }

    /// <summary>Applies `a.b.c=value` to the YAML tree, creating intermediate mappings as needed.</summary>
    public static void ApplyOverride(YamlMappingNode root, string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new ConfigException($"override '{assignment}' is not of the form key=value");
        var keys = assignment[..eq].Trim().Split('.');
        var valueText = assignment[(eq + 1)..];
        var node = root;
        for (int i = 0; i < keys.Length - 1; i++)
        {
            var key = new YamlScalarNode(keys[i]);
            if (!node.Children.TryGetValue(key, out var child))
                node.Children[key] = child = new YamlMappingNode();
            node = child as YamlMappingNode
                ?? throw new ConfigException($"override '{assignment}': '{string.Join('.', keys[..(i + 1)])}' is not a section");
        }
        node.Children[new YamlScalarNode(keys[^1])] = ParseValue(valueText);
    }

    private static YamlNode ParseValue(string text)
    {
        var trimmed = text.Trim();
        if (trimmed.StartsWith('[') || trimmed.StartsWith('{'))
        {
            var stream = new YamlStream();
            stream.Load(new StringReader("v: " + trimmed));
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

    private static string Scalar(object? value) => value switch
    {
        null => "null",
        string s => Quote(s),
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        Enum e => ConfigBinder.SnakeCase(e.ToString()),
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
