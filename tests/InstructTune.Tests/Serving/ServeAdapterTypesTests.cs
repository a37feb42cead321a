// itune serve with every PEFT type we train beside plain LoRA (which ServeTests covers as per-request adapters): DoRA,
// IA3, prompt tuning, prefix tuning and IaSFT sparse deltas are attached to the whole model and served alone, under the
// adapter's name. The served greedy completion must equal `itune generate --adapter` run in-process on the same folder
// (an independent load path: LoadedModel + PeftRegistry.ApplyTo + Generator), and differ from the base's (the adapter is
// not silently ignored). Mixing one of them with other adapters, or hot-loading one as a per-request adapter, is refused
// naming the adapter's type.
using System.Net;
using System.Text.Json;
using InstructTune.Cli.Serve;
using InstructTune.Models;
using InstructTune.Peft.Ia3;
using InstructTune.Peft.Iasft;
using InstructTune.Peft.Lora;
using InstructTune.Peft.PrefixTuning;
using InstructTune.Peft.PromptTuning;
using InstructTune.Serving;
using InstructTune.Tests.Peft;

namespace InstructTune.Tests.Serving;

[Collection("Console")]
public class ServeAdapterTypesTests
{
    /// <summary>An adapter of <paramref name="method"/> for the serve test model, moved away from its init.</summary>
    private static string WriteAdapter(string method)
    {
        var model = LlamaCheckpoint.Load(ServeTestModel.Model);
        var dir = Directory.CreateTempSubdirectory("serve-" + method).FullName;
        var lora = new LoraConfig { Rank = 4, Alpha = 8, UseDora = true, TargetModules = ["q_proj", "v_proj", "down_proj"] };
        var prompt = new PromptTuningConfig { NumVirtualTokens = 4, Init = PromptInit.SampleVocab };
        var prefix = new PrefixTuningConfig { NumVirtualTokens = 3 };
        switch (method)
        {
            case "dora": LoraInjector.Inject(model, lora, seed: 1); break;
            case "ia3": Ia3Injector.Inject(model, new Ia3Config()); break;
            case "iasft": PeftInvariantTests.InjectIasft(model, PeftInvariantTests.IasftConfig); break;
            case "prompt": PromptTuningInjector.Inject(model, prompt, 1); break;
            default: PrefixTuningInjector.Inject(model, prefix, 1); break;
        }
        var rng = new Random(5);
        foreach (var (name, p) in model.NamedParameters().Where(p => p.Name.Contains(".lora_") || p.Name.Contains(".ia3_l") || p.Name.Contains(".iasft_values") || p.Name.Contains("prompt_encoder.") || p.Name.Contains("prefix_encoder.")))
        {
            var v = p.ToArray();
            bool zeroInit = name.Contains("lora_B") || name.Contains("iasft_values");
            for (int i = 0; i < v.Length; i++)
            {
                float noise = (float)(rng.NextDouble() * 2 - 1);
                v[i] = zeroInit ? noise : v[i] * (1 + 0.8f * noise) + (name.Contains("_encoder.") ? noise : 0);
            }
            p.Load(v);
        }
        switch (method)
        {
            case "dora": LoraAdapterIO.Save(model, lora, dir); break;
            case "ia3": Ia3AdapterIO.Save(model, new Ia3Config(), dir); break;
            case "iasft": IasftAdapterIO.Save(model, PeftInvariantTests.IasftConfig, dir); break;
            case "prompt": PromptTuningAdapterIO.Save(model, prompt, dir); break;
            default: PrefixTuningAdapterIO.Save(model, prefix, dir); break;
        }
        return dir;
    }

    private static string Generate(string? adapter)
    {
        string[] args = ["generate", "--model", ServeTestModel.Model, "--prompt", "Once upon a time", "--max-new-tokens", "10", "--json"];
        var (rc, o, e) = TestConsole.Run(adapter == null ? args : [.. args, "--adapter", adapter]);
        Assert.True(rc == 0, e);
        using var gen = JsonDocument.Parse(o);
        return gen.RootElement.GetProperty("text").GetString()!;
    }

    [Theory, InlineData("dora"), InlineData("ia3"), InlineData("prompt"), InlineData("prefix"), InlineData("iasft")]
    public async Task A_whole_model_adapter_is_served_alone_and_equals_generate_with_it(string method)
    {
        var dir = WriteAdapter(method);
        string expected = Generate(dir);
        Assert.NotEqual(Generate(null), expected);

        using var served = ServedModel.Load(ServeTestModel.Model, [("tuned", dir)], new ServeLimits());
        Assert.Equal("tuned", served.Name);
        Assert.Equal(["tuned"], served.ModelNames);
        await using var app = ServeHost.Build(served, new ServeHostOptions { Port = 0, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning });
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(ServeHost.BoundUrl(app)), Timeout = TimeSpan.FromMinutes(2) };
        using var resp = await client.PostAsync("/v1/completions", new StringContent(
            JsonSerializer.Serialize(new { model = "tuned", prompt = "Once upon a time", max_tokens = 10, temperature = 0 }), System.Text.Encoding.UTF8, "application/json"));
        var text = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.StatusCode == HttpStatusCode.OK, text);
        using var body = JsonDocument.Parse(text);
        Assert.Equal(expected, body.RootElement.GetProperty("choices")[0].GetProperty("text").GetString());

        // It takes no per-request adapter beside it (hot-loading would stack a LoRA delta on the attached adapter).
        var hot = Assert.Throws<ArgumentException>(() => served.AddAdapter("alpha", ServeTestModel.AdapterA));
        Assert.Contains("takes no other adapter", hot.Message);
        await app.StopAsync();
    }

    [Theory, InlineData("dora", "DoRA"), InlineData("ia3", "IA3"), InlineData("prompt", "PROMPT_TUNING"), InlineData("prefix", "PREFIX_TUNING"), InlineData("iasft", "IASFT")]
    public void Mixed_with_other_adapters_or_hot_loaded_it_is_refused_naming_its_type(string method, string kind)
    {
        var dir = WriteAdapter(method);
        var mixed = Assert.Throws<ArgumentException>(() => ServedModel.Load(ServeTestModel.Model, [("alpha", ServeTestModel.AdapterA), ("tuned", dir)], new ServeLimits()));
        Assert.Contains(kind, mixed.Message);
        Assert.Contains("served alone", mixed.Message);

        using var served = ServedModel.Load(ServeTestModel.Model, [("alpha", ServeTestModel.AdapterA)], new ServeLimits(), name: "base");
        var hot = Assert.Throws<ArgumentException>(() => served.AddAdapter("tuned", dir));
        Assert.Contains(kind, hot.Message);
        Assert.Contains("itune merge", hot.Message);
        Assert.Equal(["base", "alpha"], served.ModelNames);
    }

    // The adapter's virtual tokens sit at positions 0..P−1, so a prompt of n tokens needs n + P < max_position_embeddings
    // to generate anything. A prompt that the base would take but that fills the context with the virtual tokens is
    // refused by serve (400 context_length_exceeded) and by generate --adapter (exit 2) with the same message naming both
    // counts; one token shorter still generates (to the context's end) in serve.
    [Theory, InlineData("prompt", 4), InlineData("prefix", 3)]
    public async Task A_prompt_filling_the_context_with_the_virtual_tokens_is_refused_by_serve_and_generate_alike(string method, int virtualTokens)
    {
        var dir = WriteAdapter(method);
        using var served = ServedModel.Load(ServeTestModel.Model, [("tuned", dir)], new ServeLimits());
        Assert.Equal(virtualTokens, served.Model.VirtualTokens);
        int maxPos = served.Model.Config.MaxPositionEmbeddings;
        // " a" repeated: the count is measured with the server's own encoding, then checked.
        string PromptOf(int tokens)
        {
            int k = tokens - served.CompletionPromptIds("Once").Length;
            var text = "Once" + string.Concat(Enumerable.Repeat(" a", k));
            Assert.Equal(tokens, served.CompletionPromptIds(text).Length);
            return text;
        }
        string tooLong = PromptOf(maxPos - virtualTokens), fits = PromptOf(maxPos - virtualTokens - 1);

        await using var app = ServeHost.Build(served, new ServeHostOptions { Port = 0, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning });
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(ServeHost.BoundUrl(app)), Timeout = TimeSpan.FromMinutes(2) };
        async Task<(HttpStatusCode, JsonElement)> Complete(string prompt)
        {
            using var resp = await client.PostAsync("/v1/completions", new StringContent(
                JsonSerializer.Serialize(new { model = "tuned", prompt, max_tokens = 5, temperature = 0 }), System.Text.Encoding.UTF8, "application/json"));
            return (resp.StatusCode, JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.Clone());
        }
        var (status, body) = await Complete(tooLong);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = body.GetProperty("error");
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        string message = error.GetProperty("message").GetString()!;
        Assert.Contains($"the prompt has {maxPos - virtualTokens} tokens and the adapter's {virtualTokens} virtual tokens", message);
        Assert.Contains($"context of {maxPos} tokens", message);

        var (okStatus, okBody) = await Complete(fits);
        Assert.True(okStatus == HttpStatusCode.OK, okBody.ToString());
        var choice = okBody.GetProperty("choices")[0];
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(1, okBody.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        await app.StopAsync();

        var (rc, _, err) = TestConsole.Run(["generate", "--model", ServeTestModel.Model, "--adapter", dir, "--prompt", tooLong, "--max-new-tokens", "5"]);
        Assert.Equal(2, rc);
        Assert.Contains(message, err);
    }
}
