// The chat endpoint as the data-generation pipelines see it: journaled (resumable), retried (Polly, the judge's
// transient-error rules and Retry-After), bounded (concurrency, requests per minute, per-attempt timeout) and
// accounted (requests, journal hits, failures, prompt/completion tokens per stage). Any IChatClient works: an
// OpenAI-compatible server through Microsoft.Extensions.AI, or `local:DIR` in process (Serving/ChatClients).
using System.Collections.Concurrent;
using System.Globalization;
using InstructTune.Evaluation.Judge;
using Microsoft.Extensions.AI;
using Polly;
using Polly.Retry;

namespace InstructTune.Data.Synth;

/// <summary>One request: a stage name (for accounting), an optional system message, the user message, sampling.</summary>
public sealed record SynthRequest(string Stage, string User, string? System = null, float Temperature = 0.7f,
    float TopP = 1f, int MaxTokens = 512, IReadOnlyList<string>? Stop = null, int MinTokens = 0);

/// <summary>One answer: <see cref="Text"/> when the endpoint answered, else <see cref="Error"/> (after all retries).
/// <see cref="Truncated"/>: the endpoint stopped at max_tokens (finish_reason length). <see cref="Permanent"/>: the
/// error is one a retry cannot fix (a 4xx other than 408/409/429, a prompt the model refuses, …).</summary>
public sealed record SynthReply(string? Text, bool Truncated, string? Error, bool FromJournal, bool Permanent = false)
{
    public bool Ok => Error is null;
}

/// <summary>Limits and retry policy of the endpoint (synth.* keys).</summary>
public sealed record SynthEndpointOptions
{
    public string Endpoint { get; init; } = "";
    public string Model { get; init; } = "";
    public int Concurrency { get; init; } = 4;
    public double RequestsPerMinute { get; init; }
    public int MaxAttempts { get; init; } = 4;
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(120);
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(60);
    public long? Seed { get; init; }
}

/// <summary>Counts of one stage: requests answered by the endpoint, answered from the journal, failed; tokens.</summary>
public sealed class StageUsage
{
    public long Sent; public long FromJournal; public long Failed; public long PromptTokens; public long CompletionTokens;
}

public sealed class SynthEndpoint
{
    private readonly IChatClient client;
    private readonly SynthEndpointOptions options;
    private readonly SynthJournal journal;
    private readonly Action<string> log;
    private readonly ResiliencePipeline pipeline;
    private readonly SemaphoreSlim slots;
    private readonly Dictionary<string, int> occurrences = new(StringComparer.Ordinal);
    private readonly object rateGate = new();
    private DateTime nextSlot = DateTime.MinValue;
    private volatile bool answeredAny;

    public ConcurrentDictionary<string, StageUsage> Usage { get; } = new();

    public SynthEndpoint(IChatClient client, SynthEndpointOptions options, SynthJournal journal, Action<string>? log = null)
    {
        this.client = client;
        this.options = options;
        this.journal = journal;
        this.log = log ?? (_ => { });
        slots = new SemaphoreSlim(Math.Max(1, options.Concurrency));
        var builder = new ResiliencePipelineBuilder();
        if (options.MaxAttempts > 1)
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.BaseDelay,
                ShouldHandle = new PredicateBuilder().Handle<Exception>(LlmJudge.IsTransient),
                DelayGenerator = args => ValueTask.FromResult(LlmJudge.RetryAfter(args.Outcome.Exception, options.MaxRetryAfter)),
                OnRetry = args =>
                {
                    this.log($"synth: attempt {args.AttemptNumber + 1} failed ({LlmJudge.Describe(args.Outcome.Exception, options.Endpoint)}); retrying in {args.RetryDelay.TotalSeconds:0.##} s");
                    return default;
                },
            });
        pipeline = builder.AddTimeout(options.AttemptTimeout).Build();
    }

    /// <summary>
    /// Answers every request, at most <c>Concurrency</c> at a time; the result list is in request order whatever order
    /// the answers arrive in. Journal keys are fixed here, in list order, before anything is sent: the n-th identical
    /// request of a run gets occurrence n, so replay is exact. A failed request is an item's failure (its reply says
    /// why, the journal keeps the error); but when every request of the list failed with an error no retry can fix —
    /// and the list held two or more, or nothing has been answered yet in this run — the endpoint cannot do this step
    /// at all, and an <see cref="Common.InputException"/> stops the run at once instead of running on to a false success.
    /// </summary>
    /// <param name="hint">added to that error: how to do without this step (e.g. the key that turns it off).</param>
    public async Task<IReadOnlyList<SynthReply>> CompleteAllAsync(IReadOnlyList<SynthRequest> requests, CancellationToken ct, string? hint = null)
    {
        var keys = new string[requests.Count];
        lock (occurrences)
            for (int i = 0; i < requests.Count; i++)
            {
                var r = requests[i];
                string opts = string.Create(CultureInfo.InvariantCulture, $"t={r.Temperature};p={r.TopP};m={r.MaxTokens};s={string.Join('\u0002', r.Stop ?? [])};seed={options.Seed}")
                    + (r.MinTokens > 0 ? $";min={r.MinTokens}" : "");
                var messages = new List<(string, string)>();
                if (r.System is not null) messages.Add(("system", r.System));
                messages.Add(("user", r.User));
                var baseKey = SynthJournal.KeyOf(r.Stage, options.Model, opts, messages, 0);
                int n = occurrences[baseKey] = occurrences.GetValueOrDefault(baseKey) + 1;
                keys[i] = SynthJournal.KeyOf(r.Stage, options.Model, opts, messages, n);
            }
        var tasks = requests.Select((r, i) => CompleteAsync(r, keys[i], ct)).ToArray();
        var replies = await Task.WhenAll(tasks);
        if (replies.Length > 0 && replies.All(r => r is { Ok: false, Permanent: true }) && (replies.Length >= 2 || !answeredAny))
            throw new Common.InputException($"synth.endpoint {options.Endpoint}: all {replies.Length} {requests[0].Stage} request(s) failed with an error " +
                $"a retry cannot fix: {replies[0].Error}. Stopping{(hint is null ? "" : $" ({hint})")}; each request's error is in journal.jsonl, " +
                "completed requests are kept there (rerun to resume)");
        return replies;
    }

    private async Task<SynthReply> CompleteAsync(SynthRequest r, string key, CancellationToken ct)
    {
        var usage = Usage.GetOrAdd(r.Stage, _ => new StageUsage());
        if (journal.TryGet(key, out var hit))
        {
            answeredAny = true;
            Interlocked.Increment(ref usage.FromJournal);
            return new SynthReply(hit.Text, hit.Finish == "length", null, true);
        }
        await slots.WaitAsync(ct);
        try
        {
            ct.ThrowIfCancellationRequested();
            await WaitForRateAsync(ct);
            int attempts = 0;
            List<ChatMessage> messages = [];
            if (r.System is not null) messages.Add(new ChatMessage(ChatRole.System, r.System));
            messages.Add(new ChatMessage(ChatRole.User, r.User));
            var chatOptions = new ChatOptions
            {
                Temperature = r.Temperature, TopP = r.TopP, MaxOutputTokens = r.MaxTokens, Seed = options.Seed,
                StopSequences = r.Stop?.ToList(),
            };
            if (r.MinTokens > 0) chatOptions.AdditionalProperties = new() { [Serving.LocalChatClient.MinTokensProperty] = r.MinTokens };
            try
            {
                var response = await pipeline.ExecuteAsync(async t =>
                {
                    Interlocked.Increment(ref attempts);
                    try { return await client.GetResponseAsync(messages, chatOptions, t); }
                    // A 200 whose body is not a chat completion surfaces from the SDK's deserializer as one of these;
                    // named for what it is so it is retried and reported plainly (as the judge does).
                    catch (Exception ex) when (ex is System.Text.Json.JsonException or ArgumentException or InvalidOperationException
                                                   or KeyNotFoundException or FormatException or NullReferenceException)
                    {
                        throw new JudgeResponseException($"malformed response from the endpoint ({ex.GetType().Name})", ex);
                    }
                }, ct);
                var text = response.Text ?? "";
                string finish = response.FinishReason == ChatFinishReason.Length ? "length" : "stop";
                long pt = response.Usage?.InputTokenCount ?? 0, ctoks = response.Usage?.OutputTokenCount ?? 0;
                journal.Append(new JournalEntry(key, r.Stage, text, finish, pt, ctoks, attempts));
                Interlocked.Increment(ref usage.Sent);
                Interlocked.Add(ref usage.PromptTokens, pt);
                Interlocked.Add(ref usage.CompletionTokens, ctoks);
                answeredAny = true;
                return new SynthReply(text, finish == "length", null, false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                var why = LlmJudge.Describe(ex, options.Endpoint);
                log($"synth: {r.Stage} request failed after {attempts} attempt(s): {why}");
                journal.Append(new JournalEntry(key, r.Stage, null, null, 0, 0, attempts, why));
                Interlocked.Increment(ref usage.Failed);
                // Timeouts and cancellations from the transport are transient like LlmJudge's own rules say.
                bool permanent = !LlmJudge.IsTransient(ex) && ex is not OperationCanceledException;
                return new SynthReply(null, false, why, false, permanent);
            }
        }
        finally { slots.Release(); }
    }

    // Requests per minute as a minimum spacing between request starts (0 = unlimited).
    private async Task WaitForRateAsync(CancellationToken ct)
    {
        if (options.RequestsPerMinute <= 0) return;
        TimeSpan wait;
        lock (rateGate)
        {
            var now = DateTime.UtcNow;
            var at = nextSlot > now ? nextSlot : now;
            nextSlot = at + TimeSpan.FromMinutes(1 / options.RequestsPerMinute);
            wait = at - now;
        }
        if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);
    }

    /// <summary>Sum over stages: (sent, from journal, failed, prompt tokens, completion tokens).</summary>
    public (long Sent, long FromJournal, long Failed, long PromptTokens, long CompletionTokens) Totals() =>
        (Usage.Values.Sum(u => u.Sent), Usage.Values.Sum(u => u.FromJournal), Usage.Values.Sum(u => u.Failed),
         Usage.Values.Sum(u => u.PromptTokens), Usage.Values.Sum(u => u.CompletionTokens));
}
