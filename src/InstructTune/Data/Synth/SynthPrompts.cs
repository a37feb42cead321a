// The prompt templates of the data-generation pipelines. The defaults are the files of configs/synth/ compiled into
// the library; synth.prompts_dir names a folder whose same-named .txt files replace them (a copy of configs/synth/
// to edit). Placeholders are {name}; a template missing one it needs is an error naming the file.
using InstructTune.Common;

namespace InstructTune.Data.Synth;

public sealed class SynthPrompts
{
    private readonly Dictionary<string, (string Text, string Origin)> templates = new(StringComparer.Ordinal);

    public static SynthPrompts Load(string? dir)
    {
        var p = new SynthPrompts();
        var asm = typeof(SynthPrompts).Assembly;
        foreach (var name in asm.GetManifestResourceNames().Where(n => n.StartsWith("synth/", StringComparison.Ordinal)))
        {
            using var reader = new StreamReader(asm.GetManifestResourceStream(name)!);
            var key = Path.GetFileNameWithoutExtension(name["synth/".Length..]);
            p.templates[key] = (reader.ReadToEnd(), "built-in " + name["synth/".Length..]);
        }
        if (!string.IsNullOrEmpty(dir))
        {
            if (!Directory.Exists(dir)) throw new InputException($"synth.prompts_dir: folder not found: {dir}");
            foreach (var file in Directory.GetFiles(dir, "*.txt"))
            {
                var key = Path.GetFileNameWithoutExtension(file);
                if (!p.templates.ContainsKey(key))
                    throw new InputException($"{file}: not a synth prompt name (expected one of {string.Join(", ", p.templates.Keys.Order())})");
                p.templates[key] = (File.ReadAllText(file), file);
            }
        }
        return p;
    }

    /// <summary>Template <paramref name="name"/> with each {key} replaced by its value.</summary>
    public string Render(string name, params (string Key, string Value)[] values)
    {
        if (!templates.TryGetValue(name, out var t)) throw new InvalidOperationException($"no synth prompt '{name}'");
        var text = t.Text;
        foreach (var (key, value) in values)
        {
            var marker = "{" + key + "}";
            if (!text.Contains(marker, StringComparison.Ordinal))
                throw new InputException($"{t.Origin}: the template has no {marker} placeholder");
            text = text.Replace(marker, value, StringComparison.Ordinal);
        }
        return text.TrimEnd('\n', '\r');
    }

    /// <summary>A "name: text" list template (one entry per line), e.g. the Evol-Instruct in-depth methods.</summary>
    public IReadOnlyDictionary<string, string> Entries(string name)
    {
        if (!templates.TryGetValue(name, out var t)) throw new InvalidOperationException($"no synth prompt '{name}'");
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        int no = 0;
        foreach (var line in t.Text.Split('\n'))
        {
            no++;
            if (line.Trim().Length == 0) continue;
            int colon = line.IndexOf(':');
            if (colon <= 0) throw new InputException($"{t.Origin}:{no}: expected \"name: text\"");
            map[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return map;
    }
}
