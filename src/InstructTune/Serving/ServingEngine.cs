// Continuous batching over the BatchDecoder: requests queue up, join the running batch between decode steps
// while slots are free, stream their tokens out as they are chosen, and leave when they finish, time out, or are
// cancelled (a disconnected client). One scheduler thread owns the decoder and the model; everything else talks
// to it through Submit and the per-sequence token channels. Used by `itune serve` and by the in-process
// `local:` chat client, so both see the same batching, limits and outputs.
using System.Threading.Channels;
using InstructTune.Generation;
using InstructTune.Models.Inference;

namespace InstructTune.Serving;

/// <summary>Limits of a serving engine (the `serve:` config section and the `itune serve` options).</summary>
public sealed record ServeLimits
{
    /// <summary>Sequences decoded together (the batch); more wait in the queue.</summary>
    public int MaxConcurrent { get; init; } = 16;
    /// <summary>Sequences waiting for a slot; beyond it requests are refused (HTTP 429 with Retry-After).</summary>
    public int MaxQueue { get; init; } = 64;
    /// <summary>Largest max_tokens a request may ask for; more is a 400.</summary>
    public int MaxTokensLimit { get; init; } = 4096;
    /// <summary>max_tokens when a request gives none.</summary>
    public int DefaultMaxTokens { get; init; } = 256;
    /// <summary>Wall-clock limit of one request, queueing included; at the limit it ends with finish_reason "length".</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Largest request body in bytes (HTTP 413 beyond it).</summary>
    public long MaxRequestBytes { get; init; } = 1 << 20;
    /// <summary>Largest n (choices per request).</summary>
    public int MaxChoices { get; init; } = 8;

    public void Validate()
    {
        if (MaxConcurrent < 1) throw new ArgumentException("serve.max_concurrent must be ≥ 1");
        if (MaxQueue < 0) throw new ArgumentException("serve.max_queue must be ≥ 0");
        if (MaxTokensLimit < 1) throw new ArgumentException("serve.max_tokens_limit must be ≥ 1");
        if (DefaultMaxTokens < 1 || DefaultMaxTokens > MaxTokensLimit) throw new ArgumentException("serve.default_max_tokens must be in [1, max_tokens_limit]");
        if (RequestTimeout <= TimeSpan.Zero) throw new ArgumentException("serve.request_timeout_s must be > 0");
        if (MaxRequestBytes < 1024) throw new ArgumentException("serve.max_request_bytes must be ≥ 1024");
        if (MaxChoices < 1) throw new ArgumentException("serve.max_choices must be ≥ 1");
    }
}

/// <summary>The queue is full: retry after <see cref="RetryAfterSeconds"/>.</summary>
public sealed class ServerBusyException(int retryAfterSeconds)
    : Exception($"the server is at its queue limit; retry after {retryAfterSeconds} s")
{
    public int RetryAfterSeconds { get; } = retryAfterSeconds;
}

/// <summary>One submitted sequence: its tokens as they are chosen, then its stop reason.</summary>
public sealed class ServedSequence
{
    internal ServedSequence(int[] prompt, GenerationOptions options, int seed, InferenceAdapter? adapter, DateTime deadline, CancellationToken ct,
        byte[]? segments = null)
    {
        Prompt = prompt; Options = options; Seed = seed; Adapter = adapter; Deadline = deadline; Cancellation = ct; Segments = segments;
    }

    /// <summary>The prompt tokens' segments for instruction-aware models (null: the prompt counts as instruction).</summary>
    internal readonly byte[]? Segments;

    internal readonly int[] Prompt;
    internal readonly GenerationOptions Options;
    internal readonly int Seed;
    internal readonly InferenceAdapter? Adapter;
    internal readonly DateTime Deadline;
    internal readonly CancellationToken Cancellation;
    internal DecodeSequence? Decoding;
    private readonly Channel<int> _tokens = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource<string> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int PromptTokens => Prompt.Length;
    /// <summary>Token ids in the order chosen; completes when the sequence ends.</summary>
    public ChannelReader<int> Tokens => _tokens.Reader;
    /// <summary>The stop reason: stop_token, stop_string, max_new_tokens, max_position_embeddings, timeout, cancelled.</summary>
    public Task<string> Finished => _done.Task;

    internal void Push(int token) => _tokens.Writer.TryWrite(token);

    internal void Complete(string reason)
    {
        _tokens.Writer.TryComplete();
        _done.TrySetResult(reason);
    }

    internal void Fail(Exception e)
    {
        _tokens.Writer.TryComplete(e);
        _done.TrySetException(e);
    }

    /// <summary>OpenAI's finish_reason for a stop reason.</summary>
    public static string FinishReason(string stopReason) => stopReason is "stop_token" or "stop_string" ? "stop" : "length";
}

public sealed class ServingEngine : IDisposable
{
    private readonly BatchDecoder _decoder;
    private readonly Queue<ServedSequence> _queue = new();
    private readonly List<ServedSequence> _running = [];
    private readonly object _lock = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private volatile bool _stopping;
    private long _tokensOut, _steps;

    public ServeLimits Limits { get; }
    public InferenceModel Model { get; }

    public ServingEngine(InferenceModel model, ServeLimits limits)
    {
        limits.Validate();
        Model = model; Limits = limits;
        _decoder = new BatchDecoder(model);
        _thread = new Thread(Run) { IsBackground = true, Name = "itune-serve-scheduler" };
        _thread.Start();
    }

    /// <summary>Sequences decoding now and waiting for a slot.</summary>
    public (int Running, int Queued) Load { get { lock (_lock) return (_running.Count, _queue.Count); } }
    public long TokensGenerated => Interlocked.Read(ref _tokensOut);
    public long Steps => Interlocked.Read(ref _steps);
    /// <summary>Sequences that left because their request was cancelled (client gone) or timed out.</summary>
    public long Cancelled => Interlocked.Read(ref _cancelled);
    private long _cancelled;

    /// <summary>
    /// Queues one sequence per seed (n choices share a prompt); all or none are accepted. Throws
    /// <see cref="ServerBusyException"/> when the running batch is full and the queue has no room for them.
    /// </summary>
    public IReadOnlyList<ServedSequence> Submit(int[] prompt, GenerationOptions options, IReadOnlyList<int> seeds,
        InferenceAdapter? adapter, CancellationToken cancellationToken, byte[]? segments = null)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        options.Validate();
        if (prompt.Length == 0) throw new ArgumentException("the prompt is empty");
        if (Model.PromptTooLong(prompt.Length) is { } tooLong) throw new ArgumentException(tooLong);
        var deadline = DateTime.UtcNow + Limits.RequestTimeout;
        if (segments != null && segments.Length != prompt.Length)
            throw new ArgumentException($"{segments.Length} segments for a prompt of {prompt.Length} tokens");
        var seqs = seeds.Select(s => new ServedSequence(prompt, options, s, adapter, deadline, cancellationToken, segments)).ToList();
        lock (_lock)
        {
            int free = Math.Max(0, Limits.MaxConcurrent - _running.Count - _queue.Count);
            if (_queue.Count + Math.Max(0, seqs.Count - free) > Limits.MaxQueue)
                throw new ServerBusyException(RetryAfter());
            foreach (var s in seqs) _queue.Enqueue(s);
        }
        _wake.Release();
        return seqs;
    }

    /// <summary>Runs work that needs the model (embeddings) on the scheduler thread between decode steps.</summary>
    public Task<T> RunBetweenSteps<T>(Func<InferenceModel, T> work, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_work.Count >= Limits.MaxQueue + Limits.MaxConcurrent) throw new ServerBusyException(RetryAfter());
            _work.Enqueue(() =>
            {
                if (ct.IsCancellationRequested) { tcs.TrySetCanceled(ct); return; }
                try { tcs.TrySetResult(work(Model)); }
                catch (Exception e) { tcs.TrySetException(e); }
            });
        }
        _wake.Release();
        return tcs.Task;
    }

    private readonly Queue<Action> _work = new();

    private void RunWork()
    {
        while (true)
        {
            Action a;
            lock (_lock) { if (_work.Count == 0) return; a = _work.Dequeue(); }
            a();
        }
    }

    // A rough wait: the queue ahead divided among the slots, times a typical sequence's decode time (≥ 1 s).
    private int RetryAfter() => Math.Clamp(1 + _queue.Count / Math.Max(1, Limits.MaxConcurrent), 1, 60);

    private void Run()
    {
        while (!_stopping)
        {
            try
            {
                RunWork();
                Admit();
                if (_decoder.Count == 0) { lock (_lock) if (_work.Count > 0) continue; _wake.Wait(200); continue; }
                Evict();
                if (_decoder.Count == 0) continue;
                var tokens = _decoder.Step();
                Interlocked.Increment(ref _steps);
                Interlocked.Add(ref _tokensOut, tokens.Count);
                foreach (var t in tokens) ((ServedSequence)t.Sequence.Tag!).Push(t.Token);
                FinishDone();
            }
            catch (Exception e)
            {
                // A failed step fails the sequences in it, never the server.
                List<ServedSequence> failed;
                lock (_lock) { failed = [.. _running]; _running.Clear(); }
                foreach (var s in failed) { if (s.Decoding != null) _decoder.Remove(s.Decoding, "error"); s.Fail(e); }
            }
        }
        lock (_lock)
        {
            foreach (var s in _running.Concat(_queue)) s.Complete("cancelled");
            _running.Clear(); _queue.Clear();
        }
    }

    private void Admit()
    {
        while (true)
        {
            ServedSequence s;
            lock (_lock)
            {
                if (_running.Count >= Limits.MaxConcurrent || _queue.Count == 0) return;
                s = _queue.Dequeue();
                if (s.Cancellation.IsCancellationRequested) { s.Complete("cancelled"); continue; }
                if (DateTime.UtcNow >= s.Deadline) { s.Complete("timeout"); continue; }
                _running.Add(s);
            }
            try { s.Decoding = _decoder.Add(s.Prompt, s.Options, s.Seed, s.Adapter, s, promptSegments: s.Segments); }
            catch (Exception e) { lock (_lock) _running.Remove(s); s.Fail(e); continue; }
            if (s.Decoding.Finished) { lock (_lock) _running.Remove(s); s.Complete(s.Decoding.StopReason!); }
        }
    }

    // Cancelled and timed-out sequences leave between steps; their slots free for the queue.
    private void Evict()
    {
        var now = DateTime.UtcNow;
        List<ServedSequence> gone;
        lock (_lock) gone = _running.Where(s => s.Cancellation.IsCancellationRequested || now >= s.Deadline).ToList();
        foreach (var s in gone)
        {
            string reason = s.Cancellation.IsCancellationRequested ? "cancelled" : "timeout";
            _decoder.Remove(s.Decoding!, reason);
            Interlocked.Increment(ref _cancelled);
            lock (_lock) _running.Remove(s);
            s.Complete(reason);
        }
    }

    private void FinishDone()
    {
        List<ServedSequence> done;
        lock (_lock)
        {
            done = _running.Where(s => s.Decoding!.Finished).ToList();
            foreach (var s in done) _running.Remove(s);
        }
        foreach (var s in done) s.Complete(s.Decoding!.StopReason!);
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Release();
        _thread.Join(TimeSpan.FromSeconds(30));
    }
}
