using System.Text.Json.Serialization;
using InstructTune.Data.Quality;

namespace InstructTune.Data.Pipeline;

public sealed record TokenStats(
    [property: JsonPropertyName("mean")] double Mean,
    [property: JsonPropertyName("p95")] int P95,
    [property: JsonPropertyName("max")] int Max,
    [property: JsonPropertyName("total")] long Total,
    [property: JsonPropertyName("learned")] long Learned);

public sealed record PaddingShare(
    [property: JsonPropertyName("plain")] double Plain,
    [property: JsonPropertyName("bucketed")] double Bucketed,
    [property: JsonPropertyName("packed")] double Packed);

/// <summary>stats.json of a prepare run (the keys issue 5 names, plus quality per task and timing).</summary>
public sealed record PrepareStats(
    [property: JsonPropertyName("records_read")] int RecordsRead,
    [property: JsonPropertyName("records_kept")] int RecordsKept,
    [property: JsonPropertyName("records_rejected")] int RecordsRejected,
    [property: JsonPropertyName("rejected_by_reason")] IReadOnlyDictionary<string, int> RejectedByReason,
    [property: JsonPropertyName("duplicates_removed")] int DuplicatesRemoved,
    [property: JsonPropertyName("tokens")] TokenStats Tokens,
    [property: JsonPropertyName("truncated")] int Truncated,
    [property: JsonPropertyName("padding_share")] PaddingShare PaddingShare,
    [property: JsonPropertyName("quality")] IReadOnlyDictionary<string, TaskQuality> Quality,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("cache_reused")] bool CacheReused)
{
    /// <summary>Records the quality rules sent to review.jsonl (left out of training).</summary>
    [JsonPropertyName("flagged")] public int Flagged { get; init; }
    /// <summary>Records the quality rules rejected (duplicates are counted apart).</summary>
    [JsonPropertyName("quality_rejected")] public int QualityRejected { get; init; }
    /// <summary>Examples left out after tokenization (too_long: drop; no learned token left).</summary>
    [JsonPropertyName("dropped")] public int Dropped { get; init; }
    [JsonPropertyName("dropped_by_reason")] public IReadOnlyDictionary<string, int> DroppedByReason { get; init; } = new Dictionary<string, int>();
}
