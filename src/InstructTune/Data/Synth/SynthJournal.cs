// The request journal of a data-generation run: every request sent to the endpoint and its answer (or failure), one
// JSON line each, appended and flushed as it happens. A rerun in the same output folder reads it back and answers
// every request it already holds from it, so a killed run resumes without repeating a completed request; since the
// pipelines are deterministic given their seed and the answers, the resumed run ends with the same output.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace InstructTune.Data.Synth;

/// <summary>One journal line. <see cref="Key"/> hashes (stage, model, sampling options, messages, occurrence);
/// failed requests are journaled for the record (<see cref="Error"/>) but never replayed.</summary>
public sealed record JournalEntry(
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("stage")] string Stage,
    [property: JsonPropertyName("text")] string? Text,
    [property: JsonPropertyName("finish")] string? Finish,
    [property: JsonPropertyName("prompt_tokens")] long PromptTokens,
    [property: JsonPropertyName("completion_tokens")] long CompletionTokens,
    [property: JsonPropertyName("attempts")] int Attempts,
    [property: JsonPropertyName("error")] string? Error = null,
    [property: JsonPropertyName("prompt")] string? Prompt = null);

/// <summary>
/// Append-only JSONL journal (<c>journal.jsonl</c> in the run folder). Each entry is written with one append and a
/// flush to disk before the pipeline uses the answer; a torn last line from a crash is skipped on load (that one
/// request is sent again). Thread-safe.
/// </summary>
public sealed class SynthJournal
{
    private readonly string? path;
    private readonly Dictionary<string, JournalEntry> done = new(StringComparer.Ordinal);
    private readonly object gate = new();

    /// <summary>Called after each successful entry is on disk (tests use it to stop a run at a chosen point).</summary>
    public Action<JournalEntry>? Appended { get; set; }

    public SynthJournal(string? path)
    {
        this.path = path;
        if (path is null || !File.Exists(path)) return;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var e = JsonSerializer.Deserialize<JournalEntry>(line);
                if (e?.Key is not null && e.Text is not null && e.Error is null) done[e.Key] = e;
            }
            catch (JsonException) { /* a torn line from an interrupted run: that request is simply sent again */ }
        }
        Loaded = done.Count;
    }

    /// <summary>Completed requests read from an earlier run.</summary>
    public int Loaded { get; }

    public static string KeyOf(string stage, string model, string options, IEnumerable<(string Role, string Text)> messages, int occurrence)
    {
        var sb = new StringBuilder().Append(stage).Append('\0').Append(model).Append('\0').Append(options).Append('\0').Append(occurrence);
        foreach (var (role, text) in messages) sb.Append('\0').Append(role).Append('\u0001').Append(text);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public bool TryGet(string key, out JournalEntry entry)
    {
        lock (gate) return done.TryGetValue(key, out entry!);
    }

    public void Append(JournalEntry entry)
    {
        lock (gate)
        {
            if (entry.Error is null) done[entry.Key] = entry;
            if (path is not null)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
                stream.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(entry) + "\n"));
                stream.Flush(flushToDisk: true);
            }
        }
        if (entry.Error is null) Appended?.Invoke(entry);
    }
}
