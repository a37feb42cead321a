using System.Text.Json;

namespace InstructTune.Training.Logging;

/// <summary>Appends one JSON object per logged step to metrics.jsonl, flushed per line so a killed run keeps it.</summary>
public sealed class JsonlMetricsLogger(string path) : IDisposable
{
    private readonly StreamWriter _writer = new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read));

    public void Log(long step, IReadOnlyDictionary<string, double> metrics)
    {
        var record = new Dictionary<string, object> { ["step"] = step };
        foreach (var (key, value) in metrics) record[key] = double.IsFinite(value) ? value : value.ToString();
        _writer.WriteLine(JsonSerializer.Serialize(record));
        _writer.Flush();
    }

    public void Dispose() => _writer.Dispose();

    /// <summary>
    /// Drops the lines of steps after <paramref name="step"/> (atomically): a resumed run replays those steps and
    /// logs them again, so metrics.jsonl continues without duplicated steps.
    /// </summary>
    public static int TruncateAfter(string path, long step)
    {
        if (!File.Exists(path)) return 0;
        var kept = new List<string>();
        int dropped = 0;
        foreach (var line in File.ReadLines(path))
        {
            long? lineStep = null;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt64(out var v)) lineStep = v;
            }
            catch (JsonException) { }   // a line torn by a kill: dropped with the replayed steps
            if (lineStep is { } n && n <= step) kept.Add(line); else dropped++;
        }
        if (dropped > 0) Data.Cache.AtomicFile.WriteAllText(path, kept.Count == 0 ? "" : string.Join('\n', kept) + "\n");
        return dropped;
    }
}
