using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;
using YamlDotNet.RepresentationModel;

namespace InstructTune.Training.Config;

/// <summary>
/// The one config binder of every command: binds a YAML mapping onto a typed config record. Keys are the
/// snake_case names of the record's properties; an unknown key, a value of the wrong type or a number outside the
/// range its <see cref="ConfigKeyAttribute"/> declares is a <see cref="ConfigException"/> naming the dotted key,
/// the value, the allowed range and where it came from (file:line, or the key=value override). Properties absent
/// from the YAML keep the record's defaults, so an empty file runs. Reflection is fine here: configs are bound
/// once per run, never in a hot path.
/// </summary>
public static class ConfigBinder
{
    public static T Bind<T>(YamlMappingNode? node) where T : new() => Bind<T>(node, null, null);

    /// <summary>Binds <paramref name="node"/>; errors name <paramref name="source"/>:line, or the override that set a node.</summary>
    public static T Bind<T>(YamlMappingNode? node, string? source, IReadOnlyDictionary<YamlNode, string>? overrides) where T : new() =>
        (T)new Binder(source, overrides).BindObject(typeof(T), node, "");

    private sealed class Binder(string? source, IReadOnlyDictionary<YamlNode, string>? overrides)
    {
        public object BindObject(Type type, YamlMappingNode? node, string path)
        {
            var target = Activator.CreateInstance(type)!;
            if (node is null) return target;
            var properties = WritableProperties(type);
            foreach (var (keyNode, valueNode) in node.Children)
            {
                var key = (keyNode as YamlScalarNode)?.Value
                    ?? throw new ConfigException($"line {keyNode.Start.Line}: a config key must be a plain name, not a list or mapping{(path.Length > 0 ? $" (under '{path}')" : "")}");
                var keyPath = path.Length == 0 ? key : path + "." + key;
                if (!properties.TryGetValue(key, out var property))
                    throw Error(keyNode, keyPath,
                        $"unknown config key '{keyPath}' (known here: {string.Join(", ", properties.Keys.Order())}; see `itune config schema`)");
                object? value;
                try { value = ConvertNode(property.PropertyType, valueNode, keyPath, property.GetCustomAttribute<ConfigKeyAttribute>()); }
                catch (ConfigException e) when (!e.Located) { throw Error(valueNode, e.Key ?? keyPath, e.Message); }
                property.SetValue(target, value);
            }
            return target;
        }

        /// <summary>Prefixes the message with where the value came from and records the key.</summary>
        private ConfigException Error(YamlNode node, string keyPath, string message)
        {
            if (overrides != null && overrides.TryGetValue(node, out var assignment))
                return new ConfigException($"override '{assignment}': {message}", keyPath) { Located = true };
            if (source != null && node.Start.Line > 0)
                return new ConfigException($"{source}:{node.Start.Line}: {message}", keyPath) { Located = true };
            return new ConfigException(message, keyPath) { Located = true };
        }

        private object? ConvertNode(Type type, YamlNode node, string path, ConfigKeyAttribute? key) =>
            ConfigBinder.ConvertNode(type, node, path, key, this);
    }

    /// <summary>snake_case name → settable property of a config record.</summary>
    public static Dictionary<string, PropertyInfo> WritableProperties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .ToDictionary(p => SnakeCase(p.Name));

    private static object? ConvertNode(Type type, YamlNode node, string path, ConfigKeyAttribute? key, Binder binder)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (node is YamlScalarNode { Value: null or "~" or "null" } && (underlying != null || !type.IsValueType))
            return null;
        type = underlying ?? type;

        if (IsListType(type, out var elementType))
        {
            if (node is not YamlSequenceNode sequence)
                throw new ConfigException($"config key '{path}': expected a list, got {Describe(node)}");
            var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(elementType))!;
            int i = 0;
            foreach (var item in sequence.Children) list.Add(ConvertNode(elementType, item, $"{path}[{i++}]", key, binder));
            return list;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>)
            && type.GetGenericArguments()[0] == typeof(string))
        {
            if (node is not YamlMappingNode map)
                throw new ConfigException($"config key '{path}': expected a mapping, got {Describe(node)}");
            var valueType = type.GetGenericArguments()[1];
            var dict = (IDictionary)Activator.CreateInstance(type)!;
            foreach (var (k, v) in map.Children)
            {
                var name = (k as YamlScalarNode)?.Value
                    ?? throw new ConfigException($"line {k.Start.Line}: a key under '{path}' must be a plain name, not a list or mapping");
                dict[name] = ConvertNode(valueType, v, path + "." + name, key, binder);
            }
            return dict;
        }
        if (IsConfigRecord(type))
        {
            if (node is not YamlMappingNode mapping)
                throw new ConfigException($"config key '{path}': expected a mapping, got {Describe(node)}");
            return binder.BindObject(type, mapping, path);
        }
        if (node is not YamlScalarNode scalar)
            throw new ConfigException($"config key '{path}': expected {TypeName(type)}, got {Describe(node)}");
        var value = ConvertScalar(type, scalar.Value ?? "", path);
        CheckRange(value, key, path);
        return value;
    }

    /// <summary>Refuses a number outside the key's declared range, naming key, value and range.</summary>
    public static void CheckRange(object value, ConfigKeyAttribute? key, string path)
    {
        if (key is not { HasRange: true }) return;
        double? number = value switch { int i => i, long l => l, double d => d, float f => f, _ => null };
        if (number is { } x && !key.Allows(x))
            throw new ConfigException(
                $"config key '{path}': {Convert.ToString(value, CultureInfo.InvariantCulture)} is out of range (allowed {key.RangeText})", path);
    }

    /// <summary>Parses one scalar as the property type; also used for command-line key=value overrides.</summary>
    public static object ConvertScalar(Type type, string text, string path)
    {
        var inv = CultureInfo.InvariantCulture;
        object? value = null;
        if (type == typeof(string)) value = text;
        else if (type == typeof(int) && int.TryParse(text, NumberStyles.Integer, inv, out var i)) value = i;
        else if (type == typeof(long) && long.TryParse(text, NumberStyles.Integer, inv, out var l)) value = l;
        else if (type == typeof(double) && double.TryParse(text, NumberStyles.Float, inv, out var d)) value = d;
        else if (type == typeof(float) && float.TryParse(text, NumberStyles.Float, inv, out var f)) value = f;
        else if (type == typeof(bool) && TryParseBool(text, out var b)) value = b;
        else if (type.IsEnum)
        {
            var match = Enum.GetNames(type).FirstOrDefault(n => SnakeCase(n) == text || n.Equals(text, StringComparison.OrdinalIgnoreCase));
            if (match != null) value = Enum.Parse(type, match);
            else throw new ConfigException(
                $"config key '{path}': '{text}' is not one of {string.Join(", ", Enum.GetNames(type).Select(SnakeCase))}");
        }
        return value ?? throw new ConfigException($"config key '{path}': expected {TypeName(type)}, got '{text}'");
    }

    private static bool TryParseBool(string text, out bool value)
    {
        switch (text.ToLowerInvariant())
        {
            case "true" or "yes" or "on": value = true; return true;
            case "false" or "no" or "off": value = false; return true;
            default: value = false; return false;
        }
    }

    public static bool IsListType(Type type, out Type elementType)
    {
        elementType = typeof(object);
        if (!type.IsGenericType) return false;
        var def = type.GetGenericTypeDefinition();
        if (def != typeof(List<>) && def != typeof(IReadOnlyList<>) && def != typeof(IList<>)) return false;
        elementType = type.GetGenericArguments()[0];
        return true;
    }

    public static bool IsConfigRecord(Type type) =>
        type.IsClass && type != typeof(string) && type.GetConstructor(Type.EmptyTypes) != null
        && !IsListType(type, out _) && !typeof(IDictionary).IsAssignableFrom(type);

    private static string TypeName(Type t) =>
        t == typeof(int) || t == typeof(long) ? "an integer" : t == typeof(double) || t == typeof(float) ? "a number"
        : t == typeof(bool) ? "a boolean (true/false)" : t == typeof(string) ? "a string" : "a " + SnakeCase(t.Name);

    private static string Describe(YamlNode node) => node switch
    {
        YamlScalarNode s => $"'{s.Value}'",
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        _ => node.NodeType.ToString(),
    };

    /// <summary>LearningRate → learning_rate; MaxSeqLen → max_seq_len; QLoRA-style runs of capitals stay together.</summary>
    public static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 8);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            bool boundary = i > 0 && char.IsUpper(c) &&
                (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1])));
            if (boundary) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
