namespace InstructTune.Data.Cache;

/// <summary>
/// One shard file (little-endian), written once and read memory-mapped:
/// <code>
/// "ITDS" u32 version=1, i32 N (examples), i64 K (tokens)
/// i64 offsets[N+1]      example i covers tokens [offsets[i], offsets[i+1])
/// i32 taskIds[N], i32 complexity[N], i32 truncated[N]
/// i32 ids[K], i32 labels[K], u8 segments[K]
/// </code>
/// </summary>
internal static class ShardFormat
{
    public const uint Magic = 0x53445449; // "ITDS"
    public const int Version = 1;
    public const int HeaderBytes = 4 + 4 + 4 + 8;

    public static long OffsetsAt => HeaderBytes;
    public static long TaskIdsAt(int n) => HeaderBytes + 8L * (n + 1);
    public static long ComplexityAt(int n) => TaskIdsAt(n) + 4L * n;
    public static long TruncatedAt(int n) => ComplexityAt(n) + 4L * n;
    public static long IdsAt(int n) => TruncatedAt(n) + 4L * n;
    public static long LabelsAt(int n, long k) => IdsAt(n) + 4L * k;
    public static long SegmentsAt(int n, long k) => LabelsAt(n, k) + 4L * k;
    public static long TotalBytes(int n, long k) => SegmentsAt(n, k) + k;
}
