// itune init | score | generate | convert: random checkpoints, scoring, generation and dtype/shard
// conversion of Hugging Face Llama-family checkpoints (issue 3). The work lives in the library; this file
// parses options, reports errors as one clear line, and writes outputs atomically.
using System.CommandLine;
using InstructTune.Evaluation.ModelBackends;
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Generation;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Tokenizers;

namespace InstructTune.Cli.Commands;

public static class ModelCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Init();
        yield return Score();
        yield return Generate();
        yield return Convert();
    }

    // Errors escape to the one CLI policy (CliErrors): bad input → one line naming the thing, exit 2.
    private static int Guard(Func<int> body) => body();

    private static Command Init()
    {
        var config = new Option<string>("--config") { Description = "config.json to build the model from", Required = true };
        var output = new Option<string>("--out") { Description = "folder to write the checkpoint into", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 0UL };
        var dtype = new Option<string>("--dtype") { Description = "float32 | bfloat16", DefaultValueFactory = _ => "float32" };
        var cmd = new Command("init", "Write a random-initialised checkpoint in Hugging Face layout") { config, output, seed, dtype };
        cmd.SetAction(p => Guard(() =>
        {
            var c = LlamaConfig.Load(p.GetValue(config)!);
            var dt = LlamaCheckpoint.ParseDtype(p.GetValue(dtype)!);
            RandomCheckpoint.Create(c, p.GetValue(output)!, p.GetValue(seed), dt);
            Console.Error.WriteLine($"wrote a random {c.ModelType} checkpoint ({p.GetValue(dtype)}) to {p.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }

    private static Command Score()
    {
        var modelOpt = new Option<string>("--model") { Description = "checkpoint folder", Required = true };
        var input = new Option<string>("--input") { Description = "JSONL: {\"ids\":[…]} or {\"text\":…} per line", Required = true };
        var output = new Option<string?>("--output") { Description = "JSONL output (default: stdout)" };
        var logits = new Option<bool>("--logits") { Description = "add \"logits\" for every position" };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT adapter folder (LoRA, DoRA, IA3, prompt or prefix tuning, IaSFT, iPEFT, IAPT, HINT)" };
        var template = new Option<string?>("--template") { Description = "prompt format of {\"prompt\",\"response\"} lines: auto (default: the format the adapter or model was trained with, recorded in its instructtune.json; else the text as given), raw, chat, alpaca, chatml, llama2, llama3 or a format string. With --reward: the data.template the reward model was trained with (default alpaca)" };
        var reward = new Option<bool>("--reward") { Description = "reward model: score the chosen and rejected completions of preference records (JSONL) with the reward_head.safetensors of --adapter (else --model); prints one {index, chosen, rejected} line per pair and the pairwise accuracy" };
        var maxLen = new Option<int>("--max-seq-len") { Description = "with --reward: cut sequences at this many tokens (data.max_seq_len)", DefaultValueFactory = _ => 1024 };
        var compute = ComputeOption();
        var quantize = QuantizeOption();
        var cmd = new Command("score", "Next-token log-probabilities and loss of token sequences; {\"prompt\",\"response\"} lines also get the response's loss under the model's prompt format; --reward: a reward model's rewards of preference pairs")
            { modelOpt, input, output, logits, adapter, template, reward, maxLen, compute, quantize };
        cmd.SetAction(p => Guard(() =>
        {
            var arithmetic = InferenceComputes.Parse(p.GetValue(compute));
            if (p.GetValue(reward) && (arithmetic != InferenceCompute.Float32 || (p.GetValue(quantize) ?? "none") != "none"))
                throw new ArgumentException("--compute bf16 and --quantize apply to log-probabilities, not to --reward (the reward model scores in float32)");
            if (p.GetValue(reward)) return RewardScoreCommand.Run(p.GetValue(modelOpt)!, p.GetValue(adapter), p.GetValue(input)!, p.GetValue(output),
                p.GetValue(template) ?? "alpaca", p.GetValue(maxLen));
            using var loaded = LoadedModel.Load(p.GetValue(modelOpt)!, p.GetValue(adapter), requireTokenizer: false);
            var model = loaded.Model;
            ApplyArithmetic(model, arithmetic, p.GetValue(quantize));
            var mt = ModelTokenizer.Of(loaded);
            Func<string, int[]>? encode = mt is null ? null : text => mt.Encode(text);
            Func<string, string, (int[], int)>? encodePair = null;
            // {"prompt","response"} pairs' segments as training gives them, for models that read them (instruction-aware, iPEFT, IAPT)
            var pairSegments = new Dictionary<int[], byte[]?>(ReferenceEqualityComparer.Instance);
            if (mt != null)
            {
                PromptFormatter? format = null;
                encodePair = (prompt, response) =>
                {
                    if (format == null)
                    {
                        format = loaded.PromptFormat(p.GetValue(template), Console.Error.WriteLine, fallback: "raw");
                        Console.Error.WriteLine($"prompt format: {format.Describe()}");
                    }
                    var encoded = new InstructTune.Evaluation.Run.ContinuationScorer(model, loaded.Tokenizer, format.AddSpecialTokens)
                        .Encode(format.Format(prompt), response, cut: false);
                    if (model.ReadsSegments && loaded.Tokenizer is { } stok)
                        pairSegments[encoded.Ids] = format.PromptResponseSegments(new InstructTune.Data.Records.InstructionRecord(prompt, "", "", "score"), response, stok, encoded.Ids);
                    return encoded;
                };
            }
            var inputs = JsonlScoring.ReadInputs(p.GetValue(input)!, encode, model.Config.VocabSize, model.Config.MaxPositionEmbeddings, encodePair);
            var results = Scorer.Score(model, inputs.Select(i => i.Ids).ToList(), p.GetValue(logits),
                segments: pairSegments.Count == 0 ? null : inputs.Select(i => pairSegments.GetValueOrDefault(i.Ids)).ToList());
            void Write(Stream s) { for (int i = 0; i < results.Length; i++) JsonlScoring.WriteLine(s, results[i], model.Config.VocabSize, inputs[i].ResponseStart); }
            if (p.GetValue(output) is { } outPath) AtomicFile.Write(outPath, Write);
            else
            {
                var ms = new MemoryStream();
                Write(ms);
                Console.Out.Write(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                Console.Out.Flush();
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>--compute float32|bf16: the prompt's (prefill's) matmul arithmetic (InferenceModel.Compute).</summary>
    private static Option<string> ComputeOption() => new("--compute")
    {
        Description = "prefill matmuls: float32 | bf16 (bf16 activations × bf16 weights, float32 accumulation; oneDNN on CPUs with AVX512-BF16)",
        DefaultValueFactory = _ => "float32",
    };

    /// <summary>--quantize none|q8_0: hold the linear layers as q8_0 after loading (InferenceModel.QuantizeQ8_0).</summary>
    private static Option<string> QuantizeOption() => new("--quantize")
    {
        Description = "none | q8_0: quantise every linear layer and the LM head to llama.cpp's q8_0 at load (1.125 bytes/weight; decode on int8 dot products, AVX-VNNI where present)",
        DefaultValueFactory = _ => "none",
    };

    private static void ApplyArithmetic(InferenceModel model, InferenceCompute compute, string? quantize)
    {
        switch ((quantize ?? "none").Trim().ToLowerInvariant())
        {
            case "none": model.Compute = compute; break;
            case "q8_0":
                if (compute != InferenceCompute.Float32)
                    throw new ArgumentException("--compute bf16 does not apply to --quantize q8_0 (q8_0 weights compute on int8 dot products)");
                model.QuantizeQ8_0();
                break;
            default: throw new ArgumentException($"--quantize '{quantize}': expected none or q8_0");
        }
    }

    private static Command Generate()
    {
        var modelOpt = new Option<string>("--model") { Description = "checkpoint folder", Required = true };
        var prompt = new Option<string?>("--prompt") { Description = "prompt text (needs a tokenizer in the folder)" };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "prompt token ids, e.g. 1,2,3" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens to generate", DefaultValueFactory = _ => 64 };
        var temperature = new Option<string>("--temperature")
        {
            Description = "sampling temperature (0 = greedy), or auto: the one the model's temperature head predicts for the prompt (model.instruction_aware.temperature_targets)",
            DefaultValueFactory = _ => "0",
        };
        var topK = new Option<int>("--top-k") { Description = "keep the K most likely tokens (0 = off)" };
        var topP = new Option<double>("--top-p") { Description = "nucleus mass (1 = off)", DefaultValueFactory = _ => 1.0 };
        var repPenalty = new Option<double>("--repetition-penalty") { Description = "HF repetition penalty (1 = off)", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int>("--seed") { Description = "sampling seed" };
        var stop = new Option<string[]>("--stop") { Description = "stop string (repeatable)", AllowMultipleArgumentsPerToken = false };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "do not stop at the config's eos ids" };
        var json = new Option<bool>("--json") { Description = "print {\"prompt_ids\",\"generated_ids\",\"text\",\"stop_reason\",\"temperature\"}" };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT adapter folder (LoRA, DoRA, IA3, prompt or prefix tuning, IaSFT, iPEFT, IAPT, HINT)" };
        var template = new Option<string?>("--template") { Description = "prompt format for --prompt: auto (default: the format the adapter or model was trained with, recorded in its instructtune.json; else the text as given), raw, chat, alpaca, chatml, llama2, llama3 or a format string" };
        var compute = ComputeOption();
        var quantize = QuantizeOption();
        var cmd = new Command("generate", "Generate a continuation of a prompt")
            { modelOpt, prompt, promptIds, maxNew, temperature, topK, topP, repPenalty, seed, stop, ignoreEos, json, adapter, template, compute, quantize };
        cmd.SetAction(p => Guard(() =>
        {
            string dir = p.GetValue(modelOpt)!;
            var arithmetic = InferenceComputes.Parse(p.GetValue(compute));
            using var loaded = LoadedModel.Load(dir, p.GetValue(adapter), requireTokenizer: false);
            var model = loaded.Model;
            ApplyArithmetic(model, arithmetic, p.GetValue(quantize));
            var tokenizer = ModelTokenizer.Of(loaded);
            int[] ids;
            byte[]? segments = null;   // a template-formatted prompt's segments, as training gives them (instruction-aware models, iPEFT)
            if (p.GetValue(promptIds) is { } s)
                ids = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                       .Select(x => int.TryParse(x, out var v) ? v : throw new FormatException($"--prompt-ids: \"{x}\" is not an integer")).ToArray();
            else if (p.GetValue(prompt) is { } text)
            {
                if (tokenizer == null) throw new ArgumentException($"--prompt needs a tokenizer in {dir}; use --prompt-ids");
                var format = loaded.PromptFormat(p.GetValue(template), Console.Error.WriteLine, fallback: "raw");
                Console.Error.WriteLine($"prompt format: {format.Describe()}");
                ids = tokenizer.Encode(format.Format(text), format.AddSpecialTokens);
                if (model.ReadsSegments && loaded.Tokenizer is { } itok) segments = format.PromptSegments(new InstructTune.Data.Records.InstructionRecord(text, "", "", "generate"), itok, ids);
            }
            else throw new ArgumentException("give --prompt TEXT or --prompt-ids 1,2,3");
            if (ids.Length == 0) throw new ArgumentException("the prompt is empty");
            if (model.PromptTooLong(ids.Length) is { } tooLong) throw new ArgumentException(tooLong);
            int maxPos = model.RealPositions;
            int n = p.GetValue(maxNew);
            if (ids.Length + n > maxPos)
            {
                string virt = model.VirtualTokens > 0 ? $" less the adapter's {model.VirtualTokens} virtual tokens" : "";
                Console.Error.WriteLine($"warning: prompt ({ids.Length}) + max-new-tokens ({n}) exceeds max_position_embeddings={model.Config.MaxPositionEmbeddings}{virt}; generating at most {maxPos - ids.Length} tokens");
                n = maxPos - ids.Length;
            }
            bool asJson = p.GetValue(json);
            double temp;
            if (p.GetValue(temperature) is "auto")
            {
                if (!model.HasTemperatureHead)
                    throw new ArgumentException($"--temperature auto needs a temperature head; {dir} has none (train with model.instruction_aware.temperature_targets)");
                temp = model.PredictTemperature(ids, segments);
                Console.Error.WriteLine($"temperature: {temp:0.###} (the model's temperature head)");
            }
            else if (!double.TryParse(p.GetValue(temperature), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out temp) || temp < 0)
                throw new ArgumentException($"--temperature: \"{p.GetValue(temperature)}\" is neither a number ≥ 0 nor auto");
            var stream = tokenizer?.Streaming();
            var options = new GenerationOptions
            {
                MaxNewTokens = n,
                Temperature = temp,
                TopK = p.GetValue(topK),
                TopP = p.GetValue(topP),
                RepetitionPenalty = p.GetValue(repPenalty),
                Seed = p.GetValue(seed),
                StopTokenIds = p.GetValue(ignoreEos) ? [] : model.Config.EosTokenIds,
                StopStrings = p.GetValue(stop) ?? [],
                Decode = tokenizer == null ? null : tokenizer.Decode,
                OnToken = asJson ? null : (_, t) =>
                {
                    Console.Out.Write(stream == null ? $"{t} " : stream.Push(t));
                    Console.Out.Flush();
                },
            };
            var r = Generator.Generate(model, [ids], options, segments == null ? null : [segments])[0];
            if (asJson)
            {
                var o = new Dictionary<string, object?>
                {
                    ["prompt_ids"] = r.PromptIds,
                    ["generated_ids"] = r.GeneratedIds,
                    ["text"] = tokenizer?.Decode(r.GeneratedIds),
                    ["stop_reason"] = r.StopReason,
                    ["temperature"] = temp,
                };
                Console.Out.WriteLine(JsonSerializer.Serialize(o));
            }
            else Console.Out.WriteLine(stream?.Flush() ?? "");
            return 0;
        }));
        return cmd;
    }

    private static Command Convert()
    {
        var modelOpt = new Option<string>("--model") { Description = "checkpoint folder to read", Required = true };
        var output = new Option<string>("--out") { Description = "folder to write", Required = true };
        var dtype = new Option<string>("--dtype")
        {
            Description = "bfloat16 | float32 | float16 | q8_0 (q8_0: llama.cpp's 8-bit blocks for inference — generate, score, serve, export gguf; loaded in place, 1.06 bytes per weight)",
            Required = true,
        };
        var shard = new Option<string?>("--shard-size") { Description = "largest shard, e.g. 2GB (default: one file)" };
        var cmd = new Command("convert", "Rewrite a checkpoint in another dtype (or as q8_0 for inference) and/or shard size") { modelOpt, output, dtype, shard };
        cmd.SetAction(p => Guard(() =>
        {
            string src = p.GetValue(modelOpt)!, dst = p.GetValue(output)!;
            if (Path.GetFullPath(src).TrimEnd('/') == Path.GetFullPath(dst).TrimEnd('/'))
                throw new ArgumentException("--out must differ from --model");
            string dt = p.GetValue(dtype)!;
            // A bad name fails before any work.
            if (dt.Trim().ToLowerInvariant() != "q8_0" && dt is not ("float32" or "fp32" or "f32" or "bfloat16" or "bf16" or "float16" or "fp16" or "f16"))
                throw new ArgumentException($"--dtype '{dt}': expected float32, bfloat16, float16 or q8_0");
            long maxShard = p.GetValue(shard) is { } s ? SafetensorsWriter.ParseSize(s) : long.MaxValue;
            CheckpointConverter.Convert(src, dst, dt, maxShard);
            Console.Error.WriteLine($"wrote {dst} ({p.GetValue(dtype)})");
            return 0;
        }));
        return cmd;
    }
}

// The tokenizer of a model folder (tokenizer.json, tokenizer.model or spiece.model) for --prompt / {"text":…}:
// prompts are encoded with the tokenizer's special tokens (a leading BOS where it has one), as HF tokenizers do
// by default; generated text is decoded without special tokens, and streamed through a StreamingDecoder so
// multi-byte characters and SentencePiece spaces come out whole.
internal sealed class ModelTokenizer(ITokenizer tokenizer)
{
    public int[] Encode(string text, bool addSpecialTokens = true) => tokenizer.Encode(text, addSpecialTokens).Ids;
    public string Decode(IReadOnlyList<int> ids) => tokenizer.Decode(ids.ToArray(), skipSpecialTokens: true);
    public StreamingDecoder Streaming() => new(tokenizer, skipSpecialTokens: true);

    public static ModelTokenizer? Of(LoadedModel loaded) => loaded.HasTokenizer ? new ModelTokenizer(loaded.Tokenizer) : null;
}
