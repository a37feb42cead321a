using System.Text.Json;
using InstructTune.Data.Records;

namespace InstructTune.Data.Loading;

/// <summary>A Natural-Instructions positive (demonstration) example.</summary>
public sealed record SniExample(string Input, string Output, string Explanation);

/// <summary>
/// One Super-NaturalInstructions task file. Both layouts are read: the released v2.x one (Definition, Categories
/// and others as lists of strings; instances with an <c>id</c>; outputs as lists) and the 2021 contributor one
/// (Definition as a plain string; instances without <c>id</c>). The task name is the file name without extension.
/// A task file is read whole (the largest released ones are a few MB); the dataset streams file by file.
/// </summary>
public sealed record SniTask(string Name, string Definition, string Category, IReadOnlyList<SniExample> PositiveExamples)
{
    public static (SniTask Task, List<InstructionRecord> Records, List<RecordRejection> Rejections) Read(string path)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        var bytes = File.ReadAllBytes(path);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new DataFormatException(new RecordRejection(new RecordSource(path, 0, 0), null, RejectReason.InvalidUtf8, "task file is not valid UTF-8"));
        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes); }
        catch (JsonException ex)
        {
            throw new DataFormatException(new RecordRejection(new RecordSource(path, (int)(ex.LineNumber ?? -1) + 1, 0), null,
                RejectReason.BadJson, ex.Message));
        }
        using (doc)
        {
            var root = doc.RootElement;
            string definition, category;
            List<SniExample> positives = [];
            try
            {
                JsonFields.Object(root, "an SNI task file");
                definition = JsonFields.StringOrFirstOfList(root, "Definition", required: true);
                category = JsonFields.StringOrFirstOfList(root, "Categories", required: false);
                if (root.TryGetProperty("Positive Examples", out var pos) && pos.ValueKind == JsonValueKind.Array)
                    foreach (var ex in pos.EnumerateArray())
                        if (ex.ValueKind == JsonValueKind.Object)
                            positives.Add(new SniExample(JsonFields.OptionalString(ex, "input"),
                                JsonFields.StringOrFirstOfList(ex, "output", required: false), JsonFields.OptionalString(ex, "explanation")));
                JsonFields.RequiredArray(root, "Instances");
            }
            catch (RecordProblem p)
            {
                throw new DataFormatException(new RecordRejection(new RecordSource(path, 0, 0), p.Field, p.Reason, p.Message));
            }
            var task = new SniTask(name, definition, category, positives);
            var records = new List<InstructionRecord>();
            var rejections = new List<RecordRejection>();
            int i = 0;
            foreach (var inst in root.GetProperty("Instances").EnumerateArray())
            {
                var src = new RecordSource(path, 0, i);
                var at = $"Instances[{i++}]";
                try
                {
                    JsonFields.Object(inst, at);
                    var input = JsonFields.RequiredString(inst, "input");
                    var output = JsonFields.StringOrFirstOfList(inst, "output", required: true);
                    if (string.IsNullOrWhiteSpace(output))
                        throw new RecordProblem("output", RejectReason.EmptyOutput, "output is empty");
                    records.Add(new InstructionRecord(definition, input, output, name, src, Category: category));
                }
                catch (RecordProblem p)
                {
                    rejections.Add(new RecordRejection(src, p.Field == null ? at : $"{at}.{p.Field}", p.Reason, p.Message));
                }
            }
            return (task, records, rejections);
        }
    }
}
