using System.ClientModel;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace InstructTune.Evaluation.Judge;

/// <summary>An IRS request: the instruction, the response to judge and optionally a reference answer.</summary>
public sealed record IrsItem(string Id, string Instruction, string Response, string? Reference = null);

/// <summary>A pairwise request: which of A and B follows the instruction better.</summary>
public sealed record PairwiseItem(string Id, string Instruction, string ResponseA, string ResponseB);

/// <summary>
/// The outcome of one judgement: made (<see cref="Score"/> or <see cref="Winner"/> set) or failed
/// (<see cref="Error"/> set). <see cref="Attempts"/> counts requests actually sent (0 when served from cache).
/// </summary>
public sealed record Judgement(string Id, double? Score, PairwiseWinner? Winner, string? Raw, string? Error, int Attempts, bool FromCache)
{
    public bool Ok => Error is null;
}

/// <summary>The judge answered, but nothing usable could be read from it; retried like a transient failure.</summary>
public sealed class JudgeParseException(string message) : InstructTune.Common.InputException(message);

/// <summary>
/// LLM-as-a-judge runner. Each judgement goes through a Polly pipeline — retry (exponential backoff with jitter,
/// or the server's Retry-After on 429/503, capped) around a per-attempt timeout — and then the answer parser.
/// Every input ends as exactly one <see cref="Judgement"/>: made, or failed with the reason (HTTP status, timeout,
/// unparseable answer, run deadline). Successful answers go to the <see cref="JudgeCache"/>.
/// Log lines go to <c>log</c> and never contain the API key.
/// </summary>
public sealed class LlmJudge
{
    private readonly IJudgeBackend backend;
    private readonly JudgeConfig config;
    private readonly JudgeCache cache;
    private readonly Action<string> log;
    private readonly ResiliencePipeline pipeline;

    public LlmJudge(IJudgeBackend backend, JudgeConfig config, Action<string>? log = null)
    {
        this.backend = backend;
        this.config = config;
        this.log = log ?? (_ => { });
        cache = new JudgeCache(config.CachePath);
        var builder = new ResiliencePipelineBuilder();
        // Polly rejects a retry strategy with 0 retries, so MaxAttempts = 1 simply has none.
        if (config.MaxAttempts > 1)
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = config.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = config.BaseDelay,
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
                DelayGenerator = args => ValueTask.FromResult(RetryAfter(args.Outcome.Exception)),
                OnRetry = args =>
                {
                    this.log($"judge: attempt {args.AttemptNumber + 1} failed ({Describe(args.Outcome.Exception)}); retrying in {args.RetryDelay.TotalSeconds:0.##} s");
                    return default;
                },
            });
        pipeline = builder.AddTimeout(config.AttemptTimeout).Build();
    }

    public JudgeCache Cache => cache;

    public Task<IReadOnlyList<Judgement>> JudgeIrsAsync(IReadOnlyList<IrsItem> items, CancellationToken ct = default) =>
        RunAllAsync(items, i => i.Id, i => ("irs", JudgePrompts.IrsSystem, JudgePrompts.Irs(i.Instruction, i.Response, i.Reference)),
            (raw, attempts, cached, id) => JudgeAnswerParser.ParseScore(raw) is { } s
                ? new Judgement(id, s, null, raw, null, attempts, cached)
                : throw new JudgeParseException("no 1-10 score in the judge's answer"), ct);

    public Task<IReadOnlyList<Judgement>> JudgePairwiseAsync(IReadOnlyList<PairwiseItem> items, CancellationToken ct = default) =>
        RunAllAsync(items, i => i.Id, i => ("pairwise", JudgePrompts.PairwiseSystem, JudgePrompts.Pairwise(i.Instruction, i.ResponseA, i.ResponseB)),
            (raw, attempts, cached, id) => JudgeAnswerParser.ParseWinner(raw) is { } w
                ? new Judgement(id, null, w, raw, null, attempts, cached)
                : throw new JudgeParseException("no winner (A, B or tie) in the judge's answer"), ct);

    /// <summary>Pairwise in both orders to cancel position bias: a winner only when both orders agree, else a tie.</summary>
    public async Task<IReadOnlyList<Judgement>> JudgePairwiseBothOrdersAsync(IReadOnlyList<PairwiseItem> items, CancellationToken ct = default)
    {
        var forward = await JudgePairwiseAsync(items, ct);
        var swapped = await JudgePairwiseAsync(items.Select(i => i with { ResponseA = i.ResponseB, ResponseB = i.ResponseA }).ToList(), ct);
        return forward.Zip(swapped, (f, s) =>
        {
            if (!f.Ok || !s.Ok) return f with { Winner = null, Error = f.Error ?? s.Error, Attempts = f.Attempts + s.Attempts };
            var back = s.Winner switch { PairwiseWinner.A => PairwiseWinner.B, PairwiseWinner.B => PairwiseWinner.A, _ => PairwiseWinner.Tie };
            return f with { Winner = f.Winner == back ? f.Winner : PairwiseWinner.Tie, Attempts = f.Attempts + s.Attempts, FromCache = f.FromCache && s.FromCache };
        }).ToList();
    }

    private async Task<IReadOnlyList<Judgement>> RunAllAsync<T>(IReadOnlyList<T> items, Func<T, string> idOf,
        Func<T, (string Kind, string System, string User)> prompt, Func<string, int, bool, string, Judgement> read,
        CancellationToken ct)
    {
        var results = new Judgement?[items.Count];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (config.Deadline is { } d) deadline.CancelAfter(d);
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, items.Count),
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(config.MaxConcurrency, 1), CancellationToken = deadline.Token },
                async (i, token) => results[i] = await JudgeOneAsync(idOf(items[i]), prompt(items[i]), read, token));
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { /* run deadline: filled in below */ }
        // Nothing is lost: anything not finished is reported as failed with the reason.
        for (int i = 0; i < results.Length; i++)
            results[i] ??= new Judgement(idOf(items[i]), null, null, null, "not judged: run deadline reached", 0, false);
        int failed = results.Count(r => !r!.Ok);
        log($"judge: {items.Count} judgements, {items.Count - failed} made, {failed} failed");
        return results!;
    }

    private async Task<Judgement> JudgeOneAsync(string id, (string Kind, string System, string User) p,
        Func<string, int, bool, string, Judgement> read, CancellationToken token)
    {
        var key = JudgeCache.KeyOf(backend.Name, p.Kind, p.System, p.User);
        if (cache.TryGet(key, out var hit))
        {
            try { return read(hit.Raw, 0, true, id); }
            catch (JudgeParseException) { /* stale or foreign entry: judge again */ }
        }
        int attempts = 0;
        try
        {
            var judgement = await pipeline.ExecuteAsync(async t =>
            {
                Interlocked.Increment(ref attempts);
                var raw = await backend.CompleteAsync(p.System, p.User, t);
                return read(raw, attempts, false, id);
            }, token);
            // A cache that cannot be written (disk full, another process holding it) costs a re-run, not the judgement.
            try { cache.Add(new CachedJudgement(key, p.Kind, backend.Name, judgement.Raw!)); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log($"judge: could not write the cache ({ex.GetType().Name}: {FirstLine(ex.Message)}); judgement kept");
            }
            return judgement;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
        {
            log($"judge: {id} failed after {attempts} attempt(s): {Describe(ex)}");
            return new Judgement(id, null, null, null, Describe(ex), attempts, false);
        }
        catch (OperationCanceledException)
        {
            return new Judgement(id, null, null, null, $"not judged: run deadline reached after {attempts} attempt(s)", attempts, false);
        }
    }

    // Transient: HTTP 408/409/429/5xx, a refused or dropped connection, attempt timeouts, a malformed body, an answer we
    // could not read. Not transient: other HTTP statuses (401, 404, …), DNS and TLS failures, a body over the size cap.
    // Shared with the data-generation endpoint (Data/Synth/SynthEndpoint), which retries the same way.
    public static bool IsTransient(Exception ex)
    {
        if (Find<Serving.ResponseTooLargeException>(ex) is not null) return false;
        if (Find<HttpRequestException>(ex) is { } h)
            return h.HttpRequestError is not (HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError);
        return ex switch
        {
            ClientResultException c => c.Status is 0 or 408 or 409 or 429 or >= 500,
            TimeoutRejectedException or IOException => true,
            JudgeParseException or JudgeResponseException => true,
            _ => false,
        };
    }

    private static T? Find<T>(Exception? ex) where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException) if (ex is T t) return t;
        return null;
    }

    private TimeSpan? RetryAfter(Exception? ex) => RetryAfter(ex, config.MaxRetryAfter);

    /// <summary>The wait a 429/503 asks for in its Retry-After header (seconds or an HTTP date), clamped to [0, max];
    /// null when there is none.</summary>
    public static TimeSpan? RetryAfter(Exception? ex, TimeSpan max)
    {
        if (ex is not ClientResultException { Status: 429 or 503 } c || c.GetRawResponse() is not { } response) return null;
        if (!response.Headers.TryGetValue("Retry-After", out var value) || value is null) return null;
        TimeSpan? wait = null;
        if (double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
            wait = TimeSpan.FromSeconds(Math.Max(seconds, 0));
        else if (DateTimeOffset.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at))
            wait = at - DateTimeOffset.UtcNow;
        if (wait is null) return null;
        var clamped = wait.Value < TimeSpan.Zero ? TimeSpan.Zero : wait.Value;
        return clamped > max ? max : clamped;
    }

    /// <summary>What happened, in words a user can act on: HTTP status, connection refused, DNS, TLS, timeout, size cap,
    /// malformed answer. Never includes request headers (the key).</summary>
    public string Describe(Exception? ex) => Describe(ex, config.BaseUrl);

    /// <summary><see cref="Describe(Exception?)"/> for an endpoint given by its base URL.</summary>
    public static string Describe(Exception? ex, string baseUrl)
    {
        var endpoint = Uri.TryCreate(baseUrl, UriKind.Absolute, out var u) ? $"{u.Host}:{u.Port}" : baseUrl;
        if (ex is null) return "unknown";
        if (Find<Serving.ResponseTooLargeException>(ex) is { } big) return $"{big.Message} (max_response_bytes)";
        if (ex is ClientResultException { Status: > 0 } c) return $"HTTP {c.Status} from {endpoint}";
        if (Find<TimeoutRejectedException>(ex) is { } t) return $"timed out after {t.Timeout.TotalSeconds:0.##} s (attempt_timeout_s)";
        if (Find<HttpRequestException>(ex) is { } h)
        {
            var socket = Find<System.Net.Sockets.SocketException>(ex);
            return h.HttpRequestError switch
            {
                HttpRequestError.NameResolutionError => $"DNS lookup failed for {u?.Host ?? endpoint}",
                HttpRequestError.SecureConnectionError => $"TLS handshake with {endpoint} failed: {FirstLine((Find<System.Security.Authentication.AuthenticationException>(ex) ?? (Exception)h).Message)}",
                HttpRequestError.ConnectionError when socket?.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused => $"connection refused by {endpoint} (is the server running?)",
                HttpRequestError.ConnectionError => $"could not connect to {endpoint}: {FirstLine(socket?.Message ?? h.Message)}",
                HttpRequestError.ResponseEnded => $"{endpoint} closed the connection before the response ended",
                _ => $"request to {endpoint} failed: {FirstLine(h.Message)}",
            };
        }
        if (Find<TaskCanceledException>(ex) is not null || Find<TimeoutException>(ex) is not null) return $"timed out waiting for {endpoint}";
        return ex switch
        {
            JudgeParseException or JudgeResponseException => ex.Message,
            _ => $"{ex.GetType().Name}: {FirstLine(ex.Message)}",
        };
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();
}
