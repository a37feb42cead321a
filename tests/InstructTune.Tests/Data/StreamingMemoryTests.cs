using System.Text;
using InstructTune.Data.Loading;
using InstructTune.Data.Quality;

namespace InstructTune.Tests.Data;

/// <summary>GC.GetTotalMemory is process-wide: memory tests run alone, after the parallel ones.</summary>
[CollectionDefinition("Memory", DisableParallelization = true)]
public sealed class MemoryCollection;

/// <summary>
/// Streaming: a JSON array far larger than anything the loader may hold (generated on the fly, never on disk)
/// goes through splitter, parser, validator and exact dedup while live managed memory stays flat.
/// </summary>
[Collection("Memory")]
public class StreamingMemoryTests
{
    /// <summary>A read-only stream producing "[{…},{…},…]" with n distinct records, lazily.</summary>
    private sealed class GeneratedArrayStream(int n) : Stream
    {
        private int _next = -1;
        private byte[] _pending = [];
        private int _pos;

        public override int Read(byte[] buffer, int offset, int count)
        {
            int written = 0;
            while (written < count)
            {
                if (_pos == _pending.Length)
                {
                    if (_next > n) break;
                    _pending = Encoding.UTF8.GetBytes(_next == -1 ? "[" : _next == n ? "]" :
                        (_next > 0 ? ",\n" : "") + $"{{\"instruction\": \"Summarise document {_next}\", \"input\": \"{new string('x', 300)} {_next}\", \"output\": \"Summary number {_next} {new string('y', 200)}\"}}");
                    _pos = 0;
                    _next++;
                }
                int take = Math.Min(count - written, _pending.Length - _pos);
                Array.Copy(_pending, _pos, buffer, offset + written, take);
                _pos += take;
                written += take;
            }
            return written;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public void LiveMemoryStaysFlatOver85MegabytesOfInput()
    {
        const int N = 150_000;   // ≈ 85 MB of JSON, never on disk
        var validator = new RecordValidator(InvalidPolicy.Fail);
        var quality = new QualityFilter(new QualityOptions(ExactDedup: false));
        long baseline = 0, worst = 0;
        int count = 0;
        foreach (var r in quality.Apply(validator.Apply(DatasetLoader.Read(new GeneratedArrayStream(N), "generated", new LoadOptions(DataFormat.Alpaca)))))
        {
            count++;
            if (count == 20_000) baseline = GC.GetTotalMemory(forceFullCollection: true);
            else if (count % 50_000 == 0) worst = Math.Max(worst, GC.GetTotalMemory(forceFullCollection: true));
        }
        Assert.Equal(N, count);
        Assert.True(worst - baseline < 4_000_000, $"live memory grew from {baseline / 1e6:F1} MB to {worst / 1e6:F1} MB");
    }
}
