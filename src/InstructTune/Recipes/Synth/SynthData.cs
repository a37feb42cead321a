// Reading the instruction data the evolution and quality-control recipes start from: JSONL (one object a line) or a
// JSON array of objects with alpaca fields (instruction, input, output; optional id and provenance fields, as
// data.jsonl of an earlier synth run carries). Errors name file and line (or array index).
using System.Text.Json;
using InstructTune.Common;

namespace InstructTune.Recipes.Synth;

public static class SynthData
{
    public static List<SynthRecord> Read(string path, bool requireOutput)
    {
        if (!File.Exists(path)) throw new InputException($"{path}: file not found");
        var records = new List<SynthRecord>();
        var text = File.ReadAllText(path);
        if (text.TrimStart().StartsWith('['))
        {
            JsonElement root;
            try { root = JsonDocument.Parse(text).RootElement; }
            catch (JsonException ex) { throw new InputException($"{path}: not valid JSON ({ex.Message.Split('\n')[0]})"); }
            int i = 0;
            foreach (var e in root.EnumerateArray()) records.Add(One(e, $"{path}[{i++}]", requireOutput, i));
        }
        else
        {
            int no = 0;
            foreach (var line in text.Split('\n'))
            {
                no++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonElement e;
                try { e = JsonDocument.Parse(line).RootElement; }
                catch (JsonException ex) { throw new InputException($"{path}:{no}: not valid JSON ({ex.Message.Split('\n')[0]})"); }
                records.Add(One(e, $"{path}:{no}", requireOutput, no));
            }
        }
        if (records.Count == 0) throw new InputException($"{path}: no records");
        var dup = records.GroupBy(r => r.Id).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new InputException($"{path}: id \"{dup.Key}\" appears {dup.Count()} times (ids must be unique)");
        return records;
    }

    private static SynthRecord One(JsonElement e, string where, bool requireOutput, int no)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new InputException($"{where}: a record must be a JSON object");
        if (!e.TryGetProperty("instruction", out var ins) || ins.ValueKind != JsonValueKind.String || ins.GetString()!.Trim().Length == 0)
            throw new InputException($"{where}: \"instruction\" missing, empty or not a string");
        return Fill(SynthRecord.FromJson(e, where, requireOutput), no);
    }

    private static SynthRecord Fill(SynthRecord r, int no)
    {
        if (r.Id.Length == 0) r.Id = $"rec-{no:D6}";
        return r;
    }
}
