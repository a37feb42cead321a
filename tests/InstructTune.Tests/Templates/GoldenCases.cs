using System.Text.Json;
using InstructTune.Templates;

namespace InstructTune.Tests.Templates;

/// <summary>Loads tests/fixtures/templates/*.json (written by tools/golden/templates_render.py from jinja2).</summary>
internal static class GoldenCases
{
    public static readonly DateTime FixedNow = new(2024, 7, 26, 14, 5, 9);

    private static readonly Lazy<JsonElement[]> Render = new(() => Load("render_cases.json"));
    private static readonly Lazy<JsonElement[]> Builtin = new(() => Load("builtin_cases.json"));

    private static JsonElement[] Load(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("templates", file)));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    public static JsonElement RenderCase(int i) => Render.Value[i];
    public static JsonElement BuiltinCase(int i) => Builtin.Value[i];
    public static int RenderCount => Render.Value.Length;
    public static int BuiltinCount => Builtin.Value.Length;

    public static string Id(JsonElement c) =>
        $"{c.GetProperty("template").GetString()}/{c.GetProperty("conversation").GetString()}/agp={c.GetProperty("add_generation_prompt").GetBoolean()}";

    public static List<IReadOnlyDictionary<object, object?>> Messages(JsonElement c) =>
        c.GetProperty("messages").EnumerateArray()
            .Select(m => (IReadOnlyDictionary<object, object?>)(Dictionary<object, object?>)TemplateValues.FromJson(m)!).ToList();

    public static Dictionary<string, object?>? Extra(JsonElement c) =>
        c.TryGetProperty("extra", out var e)
            ? ((Dictionary<object, object?>)TemplateValues.FromJson(e)!).ToDictionary(kv => (string)kv.Key, kv => kv.Value)
            : null;

    /// <summary>The template a render case names: a shared tokenizer's config, a shared .jinja file, or an inline feature source.</summary>
    public static JinjaChatTemplate Template(JsonElement c)
    {
        var id = c.GetProperty("template").GetString()!;
        if (id.StartsWith("tokenizers/"))
            return ChatTemplateLoader.FromTokenizer(TestPaths.SharedTestData("tokenizers", id["tokenizers/".Length..]));
        if (id.StartsWith("chat_templates/"))
            return ChatTemplateLoader.FromTokenizer(TestPaths.SharedTestData("tokenizers", c.GetProperty("tokenizer").GetString()!),
                TestPaths.SharedTestData("chat_templates", id["chat_templates/".Length..]));
        var tokens = ((Dictionary<object, object?>)TemplateValues.FromJson(c.GetProperty("tokens"))!).ToDictionary(kv => (string)kv.Key, kv => kv.Value);
        return new JinjaChatTemplate(c.GetProperty("source").GetString()!, tokens, clock: () => FixedNow);
    }
}
