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
        return Fill(t.Origin, t.Text, values);
    }

    private static string Fill(string origin, string text, (string Key, string Value)[] values)
    {
        foreach (var (key, value) in values)
        {
            var marker = "{" + key + "}";
            if (!text.Contains(marker, StringComparison.Ordinal))
                throw new InputException($"{origin}: the template has no {marker} placeholder");
            text = text.Replace(marker, value, StringComparison.Ordinal);
        }
        return text.TrimEnd('\n', '\r');
    }

    /// <summary>A rendering of a template cut to fit a budget: <see cref="Items"/> of <see cref="ItemsGiven"/> list entries
    /// kept, <see cref="ParagraphsDropped"/> paragraphs left out; <see cref="Fits"/> false when even the shortest
    /// rendering is over the budget (it is then that shortest rendering).</summary>
    public sealed record Fitted(string Text, int Items, int ItemsGiven, int ParagraphsDropped, bool Fits)
    {
        public bool Shortened => Items < ItemsGiven || ParagraphsDropped > 0;
    }

    /// <summary>
    /// Template <paramref name="name"/> rendered with <c>valuesFor(k)</c>, made shorter until <paramref name="fits"/>
    /// accepts it, for models with a small context. First fewer list entries (k from <paramref name="items"/> down to
    /// 1; a template without a list passes 0), then, with the full list again, fewer paragraphs: the paragraphs
    /// (blank-line separated) without a placeholder that come before the last one with a placeholder — few-shot
    /// examples and then the task description — are left out one at a time, nearest to the query first. Paragraphs
    /// holding a placeholder, and those after the last of them (the answer cue), always stay.
    /// </summary>
    public Fitted RenderFitted(string name, int items, Func<int, (string Key, string Value)[]> valuesFor, Func<string, bool> fits)
    {
        if (!templates.TryGetValue(name, out var t)) throw new InvalidOperationException($"no synth prompt '{name}'");
        var paragraphs = t.Text.Replace("\r\n", "\n").Split("\n\n");
        int query = Array.FindLastIndex(paragraphs, p => p.Contains('{'));
        var droppable = Enumerable.Range(0, Math.Max(query, 0)).Where(i => !paragraphs[i].Contains('{')).Reverse().ToList();
        Fitted? last = null;
        for (int dropped = 0; dropped <= droppable.Count; dropped++)
        {
            var skip = droppable.Take(dropped).ToHashSet();
            var text = string.Join("\n\n", paragraphs.Where((_, i) => !skip.Contains(i)));
            for (int k = items; k >= Math.Min(items, 1); k--)
            {
                last = new Fitted(Fill(t.Origin, text, valuesFor(k)), k, items, dropped, true);
                if (fits(last.Text)) return last;
            }
        }
        return last! with { Fits = false };
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
