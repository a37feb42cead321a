using System.Buffers.Binary;
using Google.Protobuf;

namespace InstructTune.Training.Logging;

/// <summary>
/// Writes scalar summaries to a TensorBoard event file (`events.out.tfevents.&lt;time&gt;.&lt;host&gt;`), so
/// `tensorboard --logdir` shows the curves. Messages follow TensorFlow's event.proto/summary.proto field
/// numbers, encoded with Google.Protobuf's CodedOutputStream (no generated classes needed for three fields);
/// records use TFRecord framing with masked CRC-32C. Each record is flushed so a killed run keeps its curve.
/// </summary>
public sealed class TensorBoardWriter : IDisposable
{
    private readonly FileStream _file;
    public string FilePath { get; }

    public TensorBoardWriter(string logDir, double? wallTime = null, string? fileName = null)
    {
        Directory.CreateDirectory(logDir);
        var now = wallTime ?? UnixNow();
        FilePath = Path.Combine(logDir, fileName ?? $"events.out.tfevents.{(long)now}.{Environment.MachineName}");
        _file = new FileStream(FilePath, FileMode.Append, FileAccess.Write, FileShare.Read);
        if (_file.Length == 0) WriteRecord(EncodeEvent(now, 0, fileVersion: "brain.Event:2", null, 0));
    }

    public void AddScalar(string tag, float value, long step, double? wallTime = null) =>
        WriteRecord(EncodeEvent(wallTime ?? UnixNow(), step, null, tag, value));

    public void Dispose() => _file.Dispose();

    private static double UnixNow() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    private static byte[] EncodeEvent(double wallTime, long step, string? fileVersion, string? tag, float value)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        output.WriteTag(1, WireFormat.WireType.Fixed64); output.WriteDouble(wallTime);   // Event.wall_time
        if (step != 0) { output.WriteTag(2, WireFormat.WireType.Varint); output.WriteInt64(step); } // proto3: 0 omitted
        if (fileVersion != null) { output.WriteTag(3, WireFormat.WireType.LengthDelimited); output.WriteString(fileVersion); }
        if (tag != null)
        {
            var summaryValue = Message(o =>
            {
                o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString(tag);    // Value.tag
                o.WriteTag(2, WireFormat.WireType.Fixed32); o.WriteFloat(value);          // Value.simple_value (oneof: always written)
            });
            var summary = Message(o => { o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteBytes(ByteString.CopyFrom(summaryValue)); });
            output.WriteTag(5, WireFormat.WireType.LengthDelimited); output.WriteBytes(ByteString.CopyFrom(summary)); // Event.summary
        }
        output.Flush();
        return buffer.ToArray();
    }

    private static byte[] Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        write(output);
        output.Flush();
        return buffer.ToArray();
    }

    private void WriteRecord(byte[] data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Masked(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Masked(data));
        _file.Write(header);
        _file.Write(data);
        _file.Write(footer);
        _file.Flush();
    }
}
