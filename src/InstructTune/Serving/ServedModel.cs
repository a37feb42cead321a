// What a server serves: one base model (memory-mapped once), its tokenizer and chat template, and LoRA adapters
// by name on top of it (multi-LoRA: every adapter is a per-sequence InferenceAdapter, so requests for different
// adapters decode in the same batch). Turns OpenAI-style requests (messages or a prompt, sampling settings) into
// prompt ids and GenerationOptions, submits them to the ServingEngine, and assembles the text of each choice:
// decoded without special tokens, cut before the first stop string, streamed without ever emitting text that a
// stop string could still swallow. `itune serve` and the in-process `local:` chat client both go through here.
using System.Collections.Concurrent;
using System.Text;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Templates;
using InstructTune.Tokenizers;

namespace InstructTune.Serving;

/// <summary>A request's sampling settings with OpenAI meanings (validated by <see cref="ServedModel.Start"/>).</summary>
public sealed record SamplingRequest
{
    public int? MaxTokens { get; init; }
    public double Temperature { get; init; } = 1.0;
    /// <summary><c>temperature: "auto"</c>: the model's temperature head picks it for the prompt (<see cref="ServedModel.WithPredictedTemperature"/>).</summary>
    public bool AutoTemperature { get; init; }
    public double TopP { get; init; } = 1.0;
    public IReadOnlyList<string> Stop { get; init; } = [];
    public int? Seed { get; init; }
    public int N { get; init; } = 1;
    /// <summary>response_format json_object: decoding is constrained to one JSON object (<see cref="JsonObjectConstraint"/>).</summary>
    public bool JsonObject { get; init; }
    /// <summary>vLLM's min_tokens: the end-of-sequence tokens are not sampled before this many tokens.</summary>
    public int MinTokens { get; init; }
    /// <summary>OpenAI presence_penalty in [−2, 2] (<see cref="GenerationOptions.PresencePenalty"/>).</summary>
    public double PresencePenalty { get; init; }
    /// <summary>OpenAI frequency_penalty in [−2, 2] (<see cref="GenerationOptions.FrequencyPenalty"/>).</summary>
    public double FrequencyPenalty { get; init; }
    /// <summary>OpenAI logit_bias: token id → bias in [−100, 100] (<see cref="GenerationOptions.LogitBias"/>).</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }
}

/// <summary>Bad request content (HTTP 400 with the OpenAI error object; <see cref="Param"/> names the field).</summary>
public sealed class ServeRequestException(string message, string? param = null, string code = "invalid_request_error", int status = 400) : Exception(message)
{
    public string? Param { get; } = param;
    public string Code { get; } = code;
    public int Status { get; } = status;
}

public sealed class ServedModel : IDisposable
{
    private readonly ConcurrentDictionary<string, InferenceAdapter> _adapters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, PromptFormatter?> _formats = new(StringComparer.Ordinal);
    private readonly string _modelDir;
    private readonly bool _explicitTemplate;

    public string Name { get; }
    public InferenceModel Model { get; }
    public ITokenizer Tokenizer { get; }
    /// <summary>How chat messages become the base model's prompt: the format the folder recorded in instructtune.json
    /// when it was trained, else its chat template (or <c>--chat-template</c>); null: /v1/completions only.</summary>
    public PromptFormatter? ChatFormat { get; }
    public ServingEngine Engine { get; }
    public IReadOnlyList<int> StopIds { get; }

    private ServedModel(string name, InferenceModel model, ITokenizer tokenizer, PromptFormatter? format, ServeLimits limits,
        string modelDir, bool explicitTemplate)
    {
        Name = name; Model = model; Tokenizer = tokenizer; ChatFormat = format; _modelDir = modelDir; _explicitTemplate = explicitTemplate;
        StopIds = model.Config.EosTokenIds.Concat(tokenizer.EosId is { } e ? [e] : []).Distinct().ToArray();
        Engine = new ServingEngine(model, limits);
    }

    /// <summary>
    /// Opens a checkpoint folder for serving: model, tokenizer (required), prompt format of chat requests
    /// (<paramref name="chatTemplateFile"/> when given; else what the folder recorded in instructtune.json when it was
    /// trained; else its own chat template; none is allowed), and the named adapters, each with the prompt format its
    /// own instructtune.json records (else the base's). The base is served as <paramref name="name"/> (default: the
    /// folder's name). An instruction-conditioned adapter (iPEFT, IAPT, HINT) must come alone: it is attached to the model,
    /// served under its own name with its recorded format; so is every adapter that is not a plain per-request LoRA delta (DoRA,
    /// IA3, prompt and prefix tuning, IaSFT). <paramref name="warn"/> hears when an explicit template differs from a recorded format.
    /// </summary>
    public static ServedModel Load(string modelDir, IEnumerable<(string Name, string Dir)> adapters, ServeLimits limits,
        string? name = null, string? chatTemplateFile = null, Action<string>? warn = null)
    {
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"model folder {modelDir} not found");
        // An instruction-conditioned adapter (iPEFT, IAPT, HINT) changes the whole model, not one request's deltas: given
        // alone, it is attached to the model, which is then served under the adapter's name with its recorded format.
        var named = adapters.ToList();
        var whole = named.Where(a => Directory.Exists(a.Dir) && WholeModelKind(a.Dir) != null).ToList();
        if (whole.Count > 0 && named.Count > 1)
            throw new ArgumentException($"adapter \"{whole[0].Name}\" ({whole[0].Dir}) is a {WholeModelKind(whole[0].Dir)} adapter: it changes the whole model, so it is served alone (one --adapter, no other; or `itune merge` it and serve the merged folder)");
        if (whole.Count > 0 && name != null && name != whole[0].Name)
            throw new ArgumentException($"adapter \"{whole[0].Name}\" is served as the model itself under its own name; drop --served-model-name {name} (or name the adapter {name})");
        string? wholeDir = whole.Count > 0 ? whole[0].Dir : null;
        if (wholeDir != null) { RefuseModelFiles(wholeDir); name = whole[0].Name; named = []; }
        string? wholeKind = wholeDir != null ? WholeModelKind(wholeDir) : null;
        var tokenizer = TokenizerLoader.Load(modelDir);
        PromptFormatter? format;
        if (chatTemplateFile != null)
        {
            IChatTemplate template = ChatTemplateLoader.FromTokenizer(modelDir, chatTemplateFile);
            format = PromptFormatter.FromChatTemplate(template, $"--chat-template {chatTemplateFile}");
            if (Data.Templating.PromptFormatFile.TryRead(modelDir) is { } rec)
                warn?.Invoke($"warning: --chat-template {chatTemplateFile} replaces the prompt format {modelDir} was trained with ('{rec.Template}', {Data.Templating.PromptFormatFile.FileName})");
        }
        else format = ChatFormatOf(modelDir, wholeDir);
        var model = InferenceModel.Load(modelDir);
        ServedModel? served = null;
        try
        {
            if (tokenizer.VocabSize > model.Config.VocabSize)
                throw new InvalidDataException($"{modelDir}: the tokenizer has {tokenizer.VocabSize} tokens, more than the model's vocab_size {model.Config.VocabSize}");
            // Instruction-aware variants of a fully fine-tuned (or merged) model: instruction_aware.safetensors beside it.
            if (Models.InstructionAware.InstructionAwareFile.TryLoad(modelDir, model.Config) is { } ia) model.ApplyInstructionAware(ia);
            if (wholeDir != null) Peft.PeftRegistry.ApplyTo(model, wholeDir);
            served = new ServedModel(name ?? Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd('/')), model, tokenizer, format, limits,
                modelDir, chatTemplateFile != null) { _wholeKind = wholeKind };
            foreach (var (n, dir) in named) served.AddAdapter(n, dir);
            return served;
        }
        catch
        {
            if (served != null) served.Dispose(); else model.Dispose();
            throw;
        }
    }

    // The recorded format (adapter's, else the model's), else the folder's chat template; raw text is no chat format.
    private static PromptFormatter? ChatFormatOf(string modelDir, string? adapterDir)
    {
        PromptFormatter f;
        try { f = PromptFormatter.ForModel(null, modelDir, adapterDir); }
        catch (Evaluation.Metrics.EvalInputException e) { throw new InvalidDataException(e.Message); }
        return f.Name == "raw" && !f.Origin.StartsWith("recorded", StringComparison.Ordinal) ? null : f;
    }

    /// <summary>Each model name with the prompt format its chat requests are rendered with ("none": completions only).</summary>
    public IReadOnlyList<(string Model, string Format)> ChatFormats =>
        [(Name, ChatFormat?.Describe() ?? "none"), .. _adapters.Keys.Order(StringComparer.Ordinal).Select(a => (a, FormatOf(a)?.Describe() ?? "none"))];

    /// <summary>The prompt format chat requests for <paramref name="model"/> are rendered with (null: none).</summary>
    public PromptFormatter? FormatOf(string? model) =>
        string.IsNullOrEmpty(model) || model == Name || !_formats.TryGetValue(model, out var f) ? ChatFormat : f;

    /// <summary>Model names clients can ask for: the base, then each adapter.</summary>
    public IReadOnlyList<string> ModelNames => [Name, .. _adapters.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Loads a PEFT LoRA folder as a model name of its own (hot-loading is safe while serving); every other
    /// adapter type (DoRA, IA3, prompt/prefix tuning, IaSFT, iPEFT, IAPT, HINT) is refused naming its type: it is served alone.</summary>
    public void AddAdapter(string name, string dir)
    {
        if (string.IsNullOrWhiteSpace(name) || name == Name)
            throw new ArgumentException($"adapter name \"{name}\" is empty or the base model's name");
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"adapter folder {dir} not found");
        RefuseModelFiles(dir);
        if (_wholeKind != null)
            throw new ArgumentException($"model {Name} is served with a {_wholeKind} adapter attached to the whole model: it takes no other adapter; serve \"{name}\" from another `itune serve`");
        if (WholeModelKind(dir) is { } kind)
            throw new ArgumentException($"adapter folder {dir} is a {kind} adapter: it changes the whole model, not one request's deltas; serve it alone (itune serve --adapter NAME={dir}) or `itune merge` it and serve the merged folder");
        var adapter = Model.PrepareAdapter(LoraAdapterFile.Load(dir), name);
        // An adapter that records its own format is served with it (unless --chat-template was given for all);
        // one that records none talks like the base.
        var format = !_explicitTemplate && Data.Templating.PromptFormatFile.TryRead(dir) != null ? ChatFormatOf(_modelDir, dir) : ChatFormat;
        if (!_adapters.TryAdd(name, adapter)) throw new ArgumentException($"an adapter named \"{name}\" is already loaded");
        _formats[name] = format;
    }

    // Files beside an adapter that change the model itself (the vocabulary, instruction-aware variants): not served.
    private static void RefuseModelFiles(string dir)
    {
        if (File.Exists(Path.Combine(dir, Models.InstructionAware.TrainableTokenRows.FileName)))
            throw new ArgumentException($"adapter folder {dir} holds {Models.InstructionAware.TrainableTokenRows.FileName} (added marker tokens change the vocabulary of the whole model, not one request's adapter): serve it with `itune eval`/`generate --adapter`, or fine-tune with training.method full");
        if (File.Exists(Path.Combine(dir, Models.InstructionAware.InstructionAwareFile.FileName)))
            throw new ArgumentException($"adapter folder {dir} holds {Models.InstructionAware.InstructionAwareFile.FileName} (instruction-aware variants change the whole model, not one request's adapter): merge it with `itune merge` and serve the merged folder");
    }

    /// <summary>Null for a plain LoRA folder (a per-request delta); else the kind of an adapter that is attached to the
    /// whole model and served alone, exactly as `generate --adapter` attaches it (<see cref="Peft.PeftRegistry.ApplyTo"/>):
    /// DoRA (its magnitude rescales whole rows of W + BA), IA3, prompt and prefix tuning (virtual tokens at the start of
    /// every sequence), IaSFT sparse deltas, and the instruction-conditioned iPEFT, IAPT and HINT.</summary>
    private static string? WholeModelKind(string dir)
    {
        if (!File.Exists(Path.Combine(dir, "adapter_config.json"))) return null;
        string type = Peft.PeftRegistry.PeftType(dir);
        if (type != "LORA") return type;
        return LoraAdapterFile.Load(dir).UseDora ? "DoRA (LORA with use_dora)" : null;
    }

    /// <summary>The kind of the adapter attached to the whole model (served alone), or null.</summary>
    private string? _wholeKind;

    /// <summary>The adapter a model name selects (null for the base); throws a 404-style error for unknown names.</summary>
    public InferenceAdapter? Resolve(string? model)
    {
        if (string.IsNullOrEmpty(model) || model == Name) return null;
        if (_adapters.TryGetValue(model, out var a)) return a;
        throw new ServeRequestException($"The model '{model}' does not exist; this server has: {string.Join(", ", ModelNames)}", "model", "model_not_found", 404);
    }

    /// <summary>Chat prompt ids for <paramref name="model"/> (the base or an adapter's name): the messages in the prompt
    /// format that model was trained with (<see cref="PromptFormatter.FormatConversation"/>): a chat template rendered
    /// with the generation prompt and encoded without adding special tokens (the template writes its own BOS, as
    /// transformers' apply_chat_template does); a prompt template (alpaca, …) cut where the response starts, with BOS.</summary>
    /// <paramref name="fallback"/> renders the messages of a model that has neither (the in-process <c>local:</c> client
    /// of data generation passes <see cref="PromptFormatter.Raw"/>: plain completion); without one such a model refuses.
    public int[] ChatPromptIds(IReadOnlyList<ChatMessage> messages, string? model = null, PromptFormatter? fallback = null) =>
        ChatPrompt(messages, model, fallback).Ids;

    /// <summary><see cref="ChatPromptIds"/> with the prompt tokens' segments (template / instruction / input /
    /// response) exactly as training gives them (<see cref="PromptFormatter.ConversationSegments"/>), for a model that
    /// reads them (<see cref="InferenceModel.ReadsSegments"/>: instruction-aware variants, iPEFT, IAPT); null for
    /// every other model (no cost) and for a raw fallback format (the whole prompt counts as instruction).</summary>
    public (int[] Ids, byte[]? Segments) ChatPrompt(IReadOnlyList<ChatMessage> messages, string? model = null, PromptFormatter? fallback = null)
    {
        var format = FormatOf(model) ?? fallback
            ?? throw new ServeRequestException($"model {model ?? Name} has no chat template (tokenizer_config.json chat_template or chat_template.jinja) and records no prompt format (instructtune.json); use /v1/completions or serve with --chat-template FILE", "messages");
        if (messages.Count == 0) throw new ServeRequestException("messages must hold at least one message", "messages");
        string text;
        try { text = format.FormatConversation(messages); }
        catch (ChatTemplateException e) { throw new ServeRequestException($"the chat template refused the messages: {e.Message}", "messages"); }
        var ids = Tokenizer.Encode(text, addSpecialTokens: format.AddSpecialTokens).Ids;
        return (ids, Model.ReadsSegments ? format.ConversationSegments(messages, Tokenizer, ids) : null);
    }

    /// <summary>Completion prompt ids: the text encoded with the tokenizer's special tokens (a leading BOS where it has
    /// one), exactly as `itune generate --prompt` does.</summary>
    public int[] CompletionPromptIds(string prompt) => Tokenizer.Encode(prompt, addSpecialTokens: true).Ids;

    /// <summary>
    /// <paramref name="r"/> with <c>temperature: "auto"</c> resolved: the temperature the model's temperature head
    /// (model.instruction_aware.temperature_targets) predicts from the prompt and its segments, run between decode
    /// steps like every other use of the model outside the engine. The head reads the served model's own hidden
    /// states (a LoRA adapter named by the request does not change the prediction: serve refuses adapters holding
    /// instruction-aware tensors). A model without a head is refused naming the field. Unchanged when not auto.
    /// </summary>
    public async Task<SamplingRequest> WithPredictedTemperature(SamplingRequest r, int[] prompt, byte[]? segments, CancellationToken ct)
    {
        if (!r.AutoTemperature) return r;
        if (!Model.HasTemperatureHead)
            throw new ServeRequestException($"temperature \"auto\" needs a temperature head; model {Name} has none (train it with model.instruction_aware.temperature_targets)", "temperature");
        if (prompt.Length == 0) throw new ServeRequestException("the prompt is empty", "prompt");
        float t = await Engine.RunBetweenSteps(m => m.PredictTemperature(prompt, segments), ct);
        return r with { Temperature = t, AutoTemperature = false };
    }

    /// <summary>Validates the sampling settings, submits one sequence per choice and returns their text streams.</summary>
    /// <param name="segments">the prompt tokens' segments (<see cref="ChatPrompt"/>); null: the prompt counts as instruction.</param>
    public IReadOnlyList<ChoiceStream> Start(int[] prompt, SamplingRequest r, InferenceAdapter? adapter, CancellationToken ct, byte[]? segments = null)
    {
        var L = Engine.Limits;
        if (prompt.Length == 0) throw new ServeRequestException("the prompt is empty", "prompt");
        if (Model.TakesInstructionOut && (segments == null || segments.All(x => x == Models.InstructionAware.InstructionSpans.Instruction)))
            throw new ServeRequestException($"model {Name} is a HINT adapter: it takes the instruction out of the prompt and runs the rest, and this prompt is all instruction; "
                + "use /v1/chat/completions with a prompt format whose text follows the instruction", "prompt");
        if (r.MaxTokens is { } mt && (mt < 1 || mt > L.MaxTokensLimit))
            throw new ServeRequestException($"max_tokens must be in [1, {L.MaxTokensLimit}] (got {mt})", "max_tokens");
        if (r.AutoTemperature) throw new InvalidOperationException("resolve temperature \"auto\" with WithPredictedTemperature first");
        if (!(r.Temperature >= 0 && r.Temperature <= 2)) throw new ServeRequestException($"temperature must be in [0, 2] (got {r.Temperature})", "temperature");
        if (!(r.TopP > 0 && r.TopP <= 1)) throw new ServeRequestException($"top_p must be in (0, 1] (got {r.TopP})", "top_p");
        if (r.MinTokens < 0 || r.MinTokens > (r.MaxTokens ?? L.MaxTokensLimit))
            throw new ServeRequestException($"min_tokens must be in [0, max_tokens] (got {r.MinTokens})", "min_tokens");
        foreach (var (name, p) in new[] { ("presence_penalty", r.PresencePenalty), ("frequency_penalty", r.FrequencyPenalty) })
            if (!(p >= -2 && p <= 2)) throw new ServeRequestException($"{name} must be in [-2, 2] (got {p})", name);
        foreach (var (id, bias) in r.LogitBias ?? new Dictionary<int, float>())
        {
            if (id < 0 || id >= Model.Config.VocabSize)
                throw new ServeRequestException($"logit_bias: token id {id} is outside the vocabulary [0, {Model.Config.VocabSize})", "logit_bias");
            if (!(bias >= -100 && bias <= 100)) throw new ServeRequestException($"logit_bias: the bias of token {id} must be in [-100, 100] (got {bias})", "logit_bias");
        }
        if (r.N < 1 || r.N > L.MaxChoices) throw new ServeRequestException($"n must be in [1, {L.MaxChoices}] (got {r.N})", "n");
        if (r.Stop.Count > 4 || r.Stop.Any(string.IsNullOrEmpty)) throw new ServeRequestException("stop takes at most 4 non-empty strings", "stop");
        if (Model.PromptTooLong(prompt.Length) is { } tooLong) throw new ServeRequestException(tooLong, "messages", "context_length_exceeded");
        int maxPos = Model.RealPositions;
        int maxNew = Math.Min(r.MaxTokens ?? L.DefaultMaxTokens, maxPos - prompt.Length);
        var options = new GenerationOptions
        {
            MaxNewTokens = maxNew,
            Temperature = r.Temperature,
            TopP = r.TopP,
            StopTokenIds = StopIds,
            MinNewTokens = r.MinTokens,
            PresencePenalty = r.PresencePenalty,
            FrequencyPenalty = r.FrequencyPenalty,
            LogitBias = r.LogitBias is { Count: > 0 } ? r.LogitBias : null,
            StopStrings = r.Stop,
            Decode = r.Stop.Count > 0 ? ids => Tokenizer.Decode(ids.ToArray(), skipSpecialTokens: true) : null,
            Constraint = r.JsonObject ? new JsonObjectConstraint(Tokenizer, StopIds) : null,
        };
        int seed = r.Seed ?? Random.Shared.Next();
        var seqs = Engine.Submit(prompt, options, Enumerable.Range(0, r.N).Select(i => unchecked(seed + i)).ToList(), adapter, ct, segments);
        return seqs.Select(s => new ChoiceStream(s, Tokenizer, r.Stop)).ToList();
    }

    public void Dispose()
    {
        Engine.Dispose();
        Model.Dispose();
    }
}

/// <summary>
/// The text of one choice as its tokens arrive: decoded incrementally (whole characters only), cut before the
/// first stop string, and never emitting a tail that could be the start of a stop string until it is known not
/// to be. Concatenating <see cref="ReadDeltasAsync"/> gives exactly <see cref="ReadAllAsync"/>'s text.
/// </summary>
public sealed class ChoiceStream(ServedSequence sequence, ITokenizer tokenizer, IReadOnlyList<string> stops)
{
    private readonly StreamingDecoder _decoder = new(tokenizer, skipSpecialTokens: true);
    private readonly StringBuilder _raw = new();
    private int _emitted;
    private bool _stopped;

    public ServedSequence Sequence { get; } = sequence;
    public int CompletionTokens { get; private set; }
    /// <summary>OpenAI finish_reason once the stream is read to its end (stop | length).</summary>
    public string? FinishReason { get; private set; }
    public string StopReason { get; private set; } = "running";

    /// <summary>Text deltas as they become final; ends when the sequence does (throws if it was cancelled).</summary>
    public async IAsyncEnumerable<string> ReadDeltasAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (int id in Sequence.Tokens.ReadAllAsync(ct))
        {
            CompletionTokens++;
            if (_stopped) continue;
            _raw.Append(_decoder.Push(id));
            var delta = Take(final: false);
            if (delta.Length > 0) yield return delta;
        }
        StopReason = await Sequence.Finished;
        if (StopReason == "cancelled") throw new OperationCanceledException("the request was cancelled");
        if (!_stopped) _raw.Append(_decoder.Flush());
        var rest = Take(final: true);
        FinishReason = _stopped ? "stop" : ServedSequence.FinishReason(StopReason);
        if (rest.Length > 0) yield return rest;
    }

    public async Task<string> ReadAllAsync(CancellationToken ct = default)
    {
        var sb = new StringBuilder();
        await foreach (var d in ReadDeltasAsync(ct)) sb.Append(d);
        return sb.ToString();
    }

    // The raw text up to the first stop string is final once no stop string can still start inside its tail.
    private string Take(bool final)
    {
        var raw = _raw.ToString();
        int end = raw.Length;
        foreach (var s in stops)
        {
            int at = raw.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && at < end) { end = at; _stopped = true; }
        }
        if (!_stopped && !final)
            foreach (var s in stops)
                for (int k = Math.Min(s.Length - 1, raw.Length); k > 0; k--)
                    if (raw.AsSpan(raw.Length - k).SequenceEqual(s.AsSpan(0, k))) { end = Math.Min(end, raw.Length - k); break; }
        if (end <= _emitted) return "";
        var delta = raw[_emitted..end];
        _emitted = end;
        return delta;
    }
}
