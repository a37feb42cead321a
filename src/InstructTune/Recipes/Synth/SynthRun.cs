// What every data-generation recipe shares: the endpoint (journaled, retried, bounded), the prompt templates, the
// seeded random source, the funnel counters, progress lines, and the output folder (journal.jsonl, data.jsonl,
// review.jsonl, rejected.jsonl, report.json, report.html — every file but the journal written atomically).
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Common;
using InstructTune.Data.Synth;
using InstructTune.Serving;
using InstructTune.Training.Config;
using Microsoft.Extensions.AI;

namespace InstructTune.Recipes.Synth;

/// <summary>One generated (or evolved) example with its provenance: the data pipeline's alpaca fields plus method,
/// operation, parent id, round and scores. <c>itune prepare</c> / <c>train</c> read it as alpaca (extra fields are
/// ignored by the loader).</summary>
public sealed class SynthRecord
{
    public string Id { get; set; } = "";
    public string Instruction { get; set; } = "";
    public string Input { get; set; } = "";
    public string Output { get; set; } = "";
    public string Method { get; set; } = "";
    public string? Operation { get; set; }
    public string? ParentId { get; set; }
    public string? RootId { get; set; }
    public int Round { get; set; }
    public bool? IsClassification { get; set; }
    public string? Complexity { get; set; }
    public SortedDictionary<string, double> Scores { get; set; } = new(StringComparer.Ordinal);
    public List<string> Reasons { get; set; } = [];

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["id"] = Id, ["instruction"] = Instruction, ["input"] = Input, ["output"] = Output, ["method"] = Method,
            ["operation"] = Operation, ["parent_id"] = ParentId, ["root_id"] = RootId, ["round"] = Round,
        };
        if (IsClassification is { } c) o["is_classification"] = c;
        if (Complexity is not null) o["complexity"] = Complexity;
        var scores = new JsonObject();
        foreach (var (k, v) in Scores) scores[k] = Math.Round(v, 6);
        o["scores"] = scores;
        if (Reasons.Count > 0) o["reasons"] = new JsonArray(Reasons.Select(r => (JsonNode)r!).ToArray());
        return o;
    }

    public static SynthRecord FromJson(JsonElement e, string where, bool requireOutput = true)
    {
        string Str(string f, bool required = false) =>
            e.TryGetProperty(f, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
            : required ? throw new InputException($"{where}: \"{f}\" missing or not a string") : "";
        var r = new SynthRecord
        {
            Id = e.TryGetProperty("id", out var id) ? id.ToString() : "",
            Instruction = Str("instruction", true), Input = Str("input"), Output = Str("output", requireOutput),
            Method = Str("method"), Operation = Str("operation") is { Length: > 0 } op ? op : null,
            ParentId = Str("parent_id") is { Length: > 0 } p ? p : null, RootId = Str("root_id") is { Length: > 0 } rt ? rt : null,
            Round = e.TryGetProperty("round", out var rd) && rd.ValueKind == JsonValueKind.Number ? rd.GetInt32() : 0,
            Complexity = Str("complexity") is { Length: > 0 } cx ? cx : null,
        };
        if (e.TryGetProperty("is_classification", out var ic) && ic.ValueKind is JsonValueKind.True or JsonValueKind.False) r.IsClassification = ic.GetBoolean();
        if (e.TryGetProperty("scores", out var sc) && sc.ValueKind == JsonValueKind.Object)
            foreach (var s in sc.EnumerateObject()) if (s.Value.ValueKind == JsonValueKind.Number) r.Scores[s.Name] = s.Value.GetDouble();
        return r;
    }
}

/// <summary>Ordered counters of one run: what was generated, kept, flagged and rejected, by filter.</summary>
public sealed class Funnel
{
    public List<(string Name, long Count)> Items { get; } = [];

    public void Add(string name, long n = 1)
    {
        int i = Items.FindIndex(x => x.Name == name);
        if (i < 0) Items.Add((name, n)); else Items[i] = (name, Items[i].Count + n);
    }

    public long this[string name] => Items.FirstOrDefault(x => x.Name == name).Count;

    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var (k, v) in Items) o[k] = v;
        return o;
    }

    public string Line() => string.Join(", ", Items.Select(x => $"{x.Name} {x.Count}"));
}

public sealed class SynthRun : IDisposable
{
    public SynthSection Config { get; }
    public string OutDir { get; }
    public SynthEndpoint Endpoint { get; }
    public SynthJournal Journal { get; }
    public SynthPrompts Prompts { get; }
    public Random Rng { get; }
    public Funnel Funnel { get; } = new();
    public TextWriter Progress { get; }
    private readonly IChatClient client;
    private readonly LocalChatClient? local;
    private readonly HashSet<string> shortenedSaid = new(StringComparer.Ordinal);
    private readonly bool ownsClient;
    private readonly string? apiKey;
    private ISynthEmbedder? embedder;

    /// <summary>The embeddings synth.embeddings names (created on first use).</summary>
    public ISynthEmbedder Embedder => embedder ??= SynthEmbedders.Create(Config.Embeddings, client, Config.Endpoint, Config.EmbeddingModel, apiKey);

    /// <summary>Opens the run folder (creating it) and the endpoint. <paramref name="client"/> replaces the endpoint
    /// named by synth.endpoint (tests); the caller keeps ownership of it.</summary>
    public SynthRun(SynthSection config, string outDir, TextWriter? progress = null, IChatClient? client = null,
        Func<string, string?>? getEnv = null)
    {
        Config = config;
        OutDir = outDir;
        Progress = progress ?? TextWriter.Null;
        Prompts = SynthPrompts.Load(string.IsNullOrEmpty(config.PromptsDir) ? null : config.PromptsDir);
        if (client is null && string.IsNullOrWhiteSpace(config.Endpoint))
            throw new InputException("synth.endpoint: give a chat endpoint (http(s)://…/v1 or local:MODEL_DIR)");
        Directory.CreateDirectory(outDir);
        Journal = new SynthJournal(Path.Combine(outDir, "journal.jsonl"));
        if (Journal.Loaded > 0) Progress.WriteLine($"synth: resuming: {Journal.Loaded} completed requests in {Path.Combine(outDir, "journal.jsonl")}");
        getEnv ??= Environment.GetEnvironmentVariable;
        string? key = apiKey = config.ApiKeyEnv.Length > 0 ? getEnv(config.ApiKeyEnv) : null;
        bool local = config.Endpoint.StartsWith(ChatClients.LocalPrefix, StringComparison.Ordinal);
        try
        {
            this.client = client ?? ChatClients.Create(config.Endpoint, local ? null : config.Model.Length > 0 ? config.Model : null, key,
                networkTimeout: TimeSpan.FromSeconds(config.AttemptTimeoutS + 5), maxResponseBytes: config.MaxResponseBytes,
                completionFallback: true);
        }
        catch (ArgumentException ex) { throw new InputException($"synth.endpoint: {ex.Message}"); }
        ownsClient = client is null;
        // A model in this process: say how the prompts reach it (a base model without a chat template gets plain
        // completions) and fit each prompt to its context (Prompt below).
        this.local = this.client.GetService(typeof(LocalChatClient)) as LocalChatClient;
        if (this.local is null && config.MinTokens > 0)
        {
            if (ownsClient) this.client.Dispose();
            throw new InputException($"synth.min_tokens: {config.MinTokens} needs a local: endpoint (OpenAI-compatible APIs have no such field); set it to 0");
        }
        if (this.local is { } lc)
            Progress.WriteLine($"synth: {(config.Endpoint.Length > 0 ? config.Endpoint : "local model")}: prompt format {lc.DescribeFormat()}; " +
                               $"context {lc.ContextTokens} tokens (prompts leave at least synth.min_completion_tokens = {config.MinCompletionTokens} for the answer)");
        Rng = new Random(config.Seed);
        Endpoint = new SynthEndpoint(this.client, new SynthEndpointOptions
        {
            Endpoint = config.Endpoint, Model = config.Model, Concurrency = config.Concurrency,
            RequestsPerMinute = config.RequestsPerMinute, MaxAttempts = config.MaxAttempts,
            AttemptTimeout = TimeSpan.FromSeconds(config.AttemptTimeoutS), BaseDelay = TimeSpan.FromSeconds(config.BaseDelayS),
            MaxRetryAfter = TimeSpan.FromSeconds(config.MaxRetryAfterS), Seed = config.Seed,
        }, Journal, line => Progress.WriteLine(line));
    }

    /// <summary>How chat messages reach a local model (null for a remote endpoint), for the report.</summary>
    public string? LocalFormat => local?.DescribeFormat();

    /// <summary>Template <paramref name="name"/> for a request of <paramref name="maxTokens"/> answer tokens.</summary>
    public string Prompt(string name, int maxTokens, params (string Key, string Value)[] values) => Fit(name, maxTokens, 0, _ => values).Text;

    /// <summary>
    /// Template <paramref name="name"/> rendered with <c>valuesFor(k)</c> (<paramref name="items"/>: in-context list
    /// entries, 0 for none). A remote endpoint gets it whole (its context is unknown; a prompt it refuses fails that
    /// item). A local model gets it shortened until its prompt tokens leave min(max_tokens, synth.min_completion_tokens)
    /// of the context for the answer (<see cref="SynthPrompts.RenderFitted"/>); the first shortening of each template is
    /// said in the progress lines and every one counted (funnel prompts_shortened, prompts_over_context).
    /// </summary>
    public SynthPrompts.Fitted Fit(string name, int maxTokens, int items, Func<int, (string Key, string Value)[]> valuesFor)
    {
        if (local is null) return new SynthPrompts.Fitted(Prompts.Render(name, valuesFor(items)), items, items, 0, true);
        int budget = local.ContextTokens - Math.Min(maxTokens, Config.MinCompletionTokens);
        int tokens = 0;
        var fitted = Prompts.RenderFitted(name, items, valuesFor, text => (tokens = local.CountPromptTokens([new ChatMessage(ChatRole.User, text)])) <= budget);
        if (!fitted.Fits)
        {
            Funnel.Add("prompts_over_context");
            if (shortenedSaid.Add(name + "/over"))
                Progress.WriteLine($"synth: the {name} prompt has {tokens} tokens even at its shortest ({(fitted.ItemsGiven > 0 ? "one in-context task, " : "")}" +
                                   $"no examples, no description): it leaves {local.ContextTokens - tokens} of the model's {local.ContextTokens} context tokens for the answer " +
                                   $"(wanted {local.ContextTokens - budget}); a prompt over the whole context fails, per item, with its reason in journal.jsonl. " +
                                   "Shorter templates: synth.prompts_dir");
        }
        else if (fitted.Shortened)
        {
            Funnel.Add("prompts_shortened");
            if (shortenedSaid.Add(name))
                Progress.WriteLine($"synth: the {name} prompt is shortened to fit the model's context of {local.ContextTokens} tokens " +
                                   $"({tokens} prompt tokens, at least {local.ContextTokens - tokens} left for the answer): " +
                                   (fitted.ItemsGiven > 0 ? $"{fitted.Items} of {fitted.ItemsGiven} in-context tasks, " : "") +
                                   $"{fitted.ParagraphsDropped} example/description paragraph(s) left out");
        }
        return fitted;
    }

    /// <summary>A generation request (the configured temperature, top_p and max_tokens).</summary>
    public SynthRequest Generate(string stage, string user, IReadOnlyList<string>? stop = null) =>
        new(stage, user, null, (float)Config.Temperature, (float)Config.TopP, Config.MaxTokens, stop, Config.MinTokens);

    /// <summary>A judgement request: temperature 0, short answer.</summary>
    public static SynthRequest Judge(string stage, string user, string? system = null) => new(stage, user, system, 0f, 1f, JudgeMaxTokens);

    /// <summary>max_tokens of a judgement request.</summary>
    public const int JudgeMaxTokens = 64;

    /// <summary>Rounds in a row in which every request failed: past synth.max_failed_rounds the run stops with an
    /// error (what completed stays in the journal; a rerun resumes).</summary>
    public void CheckEndpointAlive(IReadOnlyList<SynthReply> replies, ref int failedRounds)
    {
        if (replies.Count == 0 || replies.Any(r => r.Ok)) { failedRounds = 0; return; }
        if (++failedRounds >= Config.MaxFailedRounds)
            throw new InputException($"synth.endpoint {Config.Endpoint}: every request failed for {failedRounds} rounds " +
                                     $"(last: {replies[^1].Error}); completed requests are kept in journal.jsonl, rerun to resume");
    }

    public static void WriteJsonl(string path, IEnumerable<SynthRecord> records)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var r in records) sb.Append(r.ToJson().ToJsonString()).Append('\n');
        OutputFile.WriteAllText(path, sb.ToString());
    }

    public JsonObject UsageJson()
    {
        var o = new JsonObject();
        foreach (var (stage, u) in Endpoint.Usage.OrderBy(x => x.Key, StringComparer.Ordinal))
            o[stage] = new JsonObject
            {
                ["sent"] = u.Sent, ["from_journal"] = u.FromJournal, ["failed"] = u.Failed,
                ["prompt_tokens"] = u.PromptTokens, ["completion_tokens"] = u.CompletionTokens,
                ["cost"] = Cost(u.PromptTokens, u.CompletionTokens),
            };
        return o;
    }

    /// <summary>Cost of the tokens at synth.prompt_price_per_mtok / completion_price_per_mtok (0 when unpriced).</summary>
    public double Cost(long promptTokens, long completionTokens) =>
        Math.Round((promptTokens * Config.PromptPricePerMtok + completionTokens * Config.CompletionPricePerMtok) / 1e6, 6);

    public void Dispose()
    {
        if (ownsClient) client.Dispose();
    }
}
