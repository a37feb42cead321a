using System.Collections;
using System.Reflection;
using System.Text;
using System.Text.Json;

namespace InstructTune.Training.Config;

/// <summary>One key of the schema: dotted name, type, default, allowed range and description.</summary>
public sealed record ConfigKeyInfo(string Key, string Type, string Default, string Range, string Description,
    PropertyInfo Property, bool IsSection);

/// <summary>
/// The config schema, generated from the records and their <see cref="ConfigKeyAttribute"/>s (so it cannot
/// drift from what the binder accepts): `itune config schema` prints it as text or JSON. Sections are listed
/// before their keys; a list of records (e.g. a list of datasets) lists its element keys as `key[].field`.
/// </summary>
public static class ConfigSchema
{
    public static IReadOnlyList<ConfigKeyInfo> Keys(Type root)
    {
        var list = new List<ConfigKeyInfo>();
        Walk(root, Activator.CreateInstance(root), "", list);
        return list;
    }

    private static void Walk(Type type, object? instance, string prefix, List<ConfigKeyInfo> into)
    {
        foreach (var (name, property) in ConfigBinder.WritableProperties(type))
        {
            var attr = property.GetCustomAttribute<ConfigKeyAttribute>();
            var key = prefix + name;
            var value = instance == null ? null : property.GetValue(instance);
            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (ConfigBinder.IsConfigRecord(propertyType))
            {
                into.Add(new(key, "section", "", "", attr?.Description ?? "", property, true));
                Walk(propertyType, value ?? Activator.CreateInstance(propertyType), key + ".", into);
                continue;
            }
            into.Add(new(key, TypeName(propertyType), DefaultText(value), attr?.RangeText ?? "", attr?.Description ?? "", property, false));
            if (ConfigBinder.IsListType(propertyType, out var element) && ConfigBinder.IsConfigRecord(element))
                Walk(element, Activator.CreateInstance(element), key + "[].", into);
        }
    }

    public static string TypeName(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        if (t == typeof(int) || t == typeof(long)) return "integer";
        if (t == typeof(double) || t == typeof(float)) return "number";
        if (t == typeof(bool)) return "boolean";
        if (t == typeof(string)) return "string";
        if (t.IsEnum) return string.Join(" | ", Enum.GetNames(t).Select(ConfigBinder.SnakeCase));
        if (ConfigBinder.IsListType(t, out var e)) return ConfigBinder.IsConfigRecord(e) ? "list of mappings" : $"list of {TypeName(e)}";
        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Dictionary<,>)) return $"map of string → {TypeName(t.GetGenericArguments()[1])}";
        return "mapping";
    }

    private static string DefaultText(object? value) => value switch
    {
        null => "",
        string s => s.Length == 0 ? "\"\"" : s,
        bool b => b ? "true" : "false",
        Enum e => ConfigBinder.SnakeCase(e.ToString()),
        IDictionary d => d.Count == 0 ? "{}" : ConfigLoader.ToYamlScalar(d),
        IEnumerable l => ConfigLoader.ToYamlScalar(l),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>Human form: one section header per section, one line per key.</summary>
    public static string ToText(Type root)
    {
        var sb = new StringBuilder();
        foreach (var k in Keys(root))
        {
            if (k.IsSection) { sb.Append('\n').Append(k.Key).Append(": ").Append(k.Description).Append('\n'); continue; }
            sb.Append("  ").Append(k.Key).Append("  (").Append(k.Type);
            if (k.Default.Length > 0) sb.Append("; default ").Append(k.Default);
            if (k.Range.Length > 0) sb.Append("; allowed ").Append(k.Range);
            sb.Append(")\n      ").Append(k.Description).Append('\n');
        }
        return sb.ToString().TrimStart('\n');
    }

    /// <summary>Machine form: [{key, type, default, range, description, section}].</summary>
    public static string ToJson(Type root) => JsonSerializer.Serialize(
        Keys(root).Select(k => new { key = k.Key, type = k.Type, @default = k.Default, range = k.Range, description = k.Description, section = k.IsSection }),
        new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
