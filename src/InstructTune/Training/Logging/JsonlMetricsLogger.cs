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
}
