using System.Net;
using System.Net.Sockets;
using System.Text;

namespace InstructTune.Tests.Hostile;

/// <summary>
/// Issue 22: a judge endpoint that answers with a 200 MB body (declared by Content-Length, or chunked with no length)
/// must cost `itune eval judge` at most its max_response_bytes cap (1 MiB by default): the child process ends within
/// the probe time limit, under the probe memory limit (its own peak working set), and the judgement names the cap.
/// The endpoint is a raw loopback socket in this process that streams the body until the client hangs up.
/// </summary>
[Collection("Probes")]
public class JudgeBodyProbeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const long BodyBytes = 200L << 20;

    private sealed class HugeBodyServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly bool _chunked;
        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
        public long Sent;

        public HugeBodyServer(bool chunked)
        {
            _chunked = chunked;
            _listener.Start();
            _ = Task.Run(AcceptLoop);
        }

        private async Task AcceptLoop()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
                catch (Exception) { return; }
                _ = Task.Run(() => Serve(client));
            }
        }

        private async Task Serve(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    await ReadRequest(stream);
                    var head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + (_chunked ? "Transfer-Encoding: chunked\r\n" : $"Content-Length: {BodyBytes}\r\n") + "\r\n";
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(head), _stop.Token);
                    var prefix = Encoding.ASCII.GetBytes("{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"");
                    var block = Encoding.ASCII.GetBytes(new string('a', 64 * 1024));
                    long left = BodyBytes;
                    async Task Send(byte[] data, int n)
                    {
                        if (_chunked) await stream.WriteAsync(Encoding.ASCII.GetBytes($"{n:X}\r\n"), _stop.Token);
                        await stream.WriteAsync(data.AsMemory(0, n), _stop.Token);
                        if (_chunked) await stream.WriteAsync("\r\n"u8.ToArray(), _stop.Token);
                        Interlocked.Add(ref Sent, n);
                    }
                    await Send(prefix, prefix.Length);
                    left -= prefix.Length;
                    while (left > 0)
                    {
                        int n = (int)Math.Min(block.Length, left);
                        await Send(block, n);
                        left -= n;
                    }
                    if (_chunked) await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), _stop.Token);
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
            }
        }

        // The request line and headers, then Content-Length bytes of body.
        private static async Task ReadRequest(NetworkStream stream)
        {
            var buffer = new byte[64 * 1024];
            var seen = new StringBuilder();
            int headerEnd;
            while ((headerEnd = seen.ToString().IndexOf("\r\n\r\n", StringComparison.Ordinal)) < 0)
            {
                int n = await stream.ReadAsync(buffer);
                if (n == 0) return;
                seen.Append(Encoding.Latin1.GetString(buffer, 0, n));
            }
            var text = seen.ToString();
            var lengthLine = text[..headerEnd].Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
            long body = lengthLine == null ? 0 : long.Parse(lengthLine["Content-Length:".Length..].Trim());
            long have = text.Length - headerEnd - 4;
            while (have < body)
            {
                int n = await stream.ReadAsync(buffer);
                if (n == 0) return;
                have += n;
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
        }
    }

    [Theory, InlineData(false), InlineData(true)]
    public void A200MbJudgeBodyEndsClearlyWithinTheCap(bool chunked)
    {
        using var server = new HugeBodyServer(chunked);
        var dir = HostileWorkspace.NewFolder("judgebody");
        var input = Path.Combine(dir, "j.jsonl");
        File.WriteAllText(input, "{\"id\":\"1\",\"instruction\":\"a\",\"response\":\"b\"}\n");
        var outDir = Path.Combine(dir, "out");
        var r = Probe.Run(["eval", "judge", "--input", input, "--out", outDir, "--base-url", $"http://127.0.0.1:{server.Port}/v1", "--model", "m"]);
        output.WriteLine($"{(chunked ? "chunked" : "Content-Length")} 200 MB body: {r.Elapsed.TotalSeconds:F1} s, peak {r.PeakMb:F0} MB, {Interlocked.Read(ref server.Sent):N0} bytes sent");
        Assert.False(r.TimedOut, r.ToString());
        Assert.Equal(1, r.ExitCode);   // the command ran; the judgement failed and says why
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("Unhandled exception", r.Stderr);
        var judgement = File.ReadAllText(Path.Combine(outDir, "judgements.jsonl"));
        Assert.Contains("max_response_bytes", judgement);
        Assert.Contains("larger than 1,048,576 bytes", judgement);
        Probe.AssertBounded(r);
        // The client stopped reading at the cap: far less than the body crossed the socket.
        Assert.True(Interlocked.Read(ref server.Sent) < BodyBytes / 2, $"{Interlocked.Read(ref server.Sent):N0} bytes sent");
    }
}
