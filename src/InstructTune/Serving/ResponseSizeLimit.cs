// A cap on how much of an HTTP response body a chat client reads: a 200 MB answer from a misbehaving endpoint must
// cost at most the cap in memory, and fail with a message that says so, not exhaust the process.
namespace InstructTune.Serving;

/// <summary>The endpoint's response body is longer than the configured cap; reading stopped at the cap.</summary>
public sealed class ResponseTooLargeException(long limit)
    : IOException($"response body larger than {limit:N0} bytes (the configured limit); reading stopped there")
{
    public long Limit { get; } = limit;
}

/// <summary>
/// Message handler that refuses a declared Content-Length above <c>maxBytes</c> before reading anything, and wraps
/// the body stream so that reading past <c>maxBytes</c> throws <see cref="ResponseTooLargeException"/> (chunked
/// bodies declare no length). The SDK buffers what it reads, so memory stays within the cap plus one buffer.
/// </summary>
public sealed class ResponseSizeLimitHandler(long maxBytes, HttpMessageHandler? inner = null)
    : DelegatingHandler(inner ?? new SocketsHttpHandler())
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.Content.Headers.ContentLength is long declared && declared > maxBytes)
        {
            response.Dispose();
            throw new ResponseTooLargeException(maxBytes);
        }
        var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var capped = new StreamContent(new CappedStream(body, maxBytes));
        foreach (var h in response.Content.Headers) capped.Headers.TryAddWithoutValidation(h.Key, h.Value);
        response.Content = capped;
        return response;
    }

    private sealed class CappedStream(Stream inner, long max) : Stream
    {
        private long _read;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, Room(count)));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer[..Room(buffer.Length)], cancellationToken).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        // One byte beyond the cap is read to tell "exactly at the cap" from "more than the cap".
        private int Room(int wanted) => (int)Math.Min(wanted, max + 1 - _read);

        private int Count(int n)
        {
            _read += n;
            if (_read > max) throw new ResponseTooLargeException(max);
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
