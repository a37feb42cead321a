using System.Text.Json;
using InstructTune.Data.Records;

namespace InstructTune.Data.Loading;

/// <summary><c>fail</c> stops at the first bad record with its location; <c>skip</c> logs it and goes on.</summary>
public enum InvalidPolicy { Fail, Skip }

/// <summary>
/// Applies the invalid-record policy to a loader's stream: passes records through, and for each rejection either
/// throws <see cref="DataFormatException"/> (fail) or counts it by reason and appends it to the rejected log (skip).
/// Counts are complete once the stream has been consumed.
/// </summary>
public sealed class RecordValidator(InvalidPolicy policy, RejectedLog? log = null)
{
    public RejectedLog? Log => log;
    public int Read { get; private set; }
    public int Kept { get; private set; }
    public int Rejected { get; private set; }
    public SortedDictionary<string, int> RejectedByReason { get; } = new(StringComparer.Ordinal);

    public IEnumerable<InstructionRecord> Apply(IEnumerable<LoadItem> items)
    {
        foreach (var item in items)
        {
            Read++;
            if (item.Record != null) { Kept++; yield return item.Record; continue; }
            var rejection = item.Rejection!;
            if (policy == InvalidPolicy.Fail) throw new DataFormatException(rejection);
            Rejected++;
            RejectedByReason[rejection.Reason] = RejectedByReason.GetValueOrDefault(rejection.Reason) + 1;
            log?.Write(rejection);
        }
    }
}

/// <summary>
/// rejected.jsonl: one JSON object per refused record (file, line, index, field, reason, message, raw). It is
/// written to a temporary file and renamed into place on <see cref="Dispose"/>, so a crash never leaves half a log.
/// </summary>
public sealed class RejectedLog : IDisposable
{
    private readonly string _path, _temp;
    private readonly StreamWriter _writer;

    public RejectedLog(string path)
    {
        _path = path;
        _temp = path + ".tmp";
        _writer = new StreamWriter(_temp, false, new System.Text.UTF8Encoding(false));
    }

    public void Write(RecordRejection r)
    {
        _writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["file"] = r.Source.File,
            ["line"] = r.Source.Line,
            ["index"] = r.Source.Index,
            ["field"] = r.Field,
            ["reason"] = r.Reason,
            ["message"] = r.Message,
            ["raw"] = r.Raw,
        }));
    }

    public void Dispose()
    {
        _writer.Flush();
        _writer.BaseStream.Flush();
        _writer.Dispose();
        File.Move(_temp, _path, overwrite: true);
    }
}
