// itune serve with `temperature: "auto"`: a model with a temperature head samples at the temperature the head predicts
// for the request's prompt (checked against InferenceModel.PredictTemperature on a separately loaded copy of the model,
// given the chat prompt's ids and segments rendered independently), and the sampled text equals a request giving that
// temperature as a number with the same seed; a model without a head, or another string, is a 400 naming the field.
using System.Net;
using System.Text.Json;
using InstructTune.Cli.Serve;
using InstructTune.Engine.Tensors;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Models.InstructionAware;
using InstructTune.Serving;
using InstructTune.Templates;
using InstructTune.Tokenizers;

namespace InstructTune.Tests.Serving;

[Collection("Console")]
public class ServeTemperatureTests
{
    /// <summary>A tiny random Llama over the Llama-2 tokenizer with a temperature head whose weights are perturbed, so its
    /// prediction depends on the prompt and is not the initial (min+max)/2.</summary>
    private static string ModelWithHead()
    {
        var dir = Directory.CreateTempSubdirectory("serve-temp").FullName;
        var config = new LlamaConfig
        {
            VocabSize = 32000, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, MaxPositionEmbeddings = 512, BosTokenId = 1, EosTokenIds = [2],
        };
        var model = new LlamaModel(config);
        model.InitializeWeights(5, 0.3f);
        var head = model.AttachInstructionAware(new InstructionAwareOptions { TemperatureRange = (0.05f, 2f) }).TemperatureHead!;
        new Rng(9).Uniform(head.Weight.Span, -1f, 1f);
        LlamaCheckpoint.Save(model, dir);
        foreach (var f in new[] { "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(TestPaths.SharedTestData("tokenizers", "llama2", f), Path.Combine(dir, f));
        return dir;
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body, string? Temperature)> Post(HttpClient client, object body)
    {
        using var resp = await client.PostAsync("/v1/chat/completions",
            new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"));
        var text = await resp.Content.ReadAsStringAsync();
        string? t = resp.Headers.TryGetValues(ServeHost.TemperatureHeader, out var v) ? v.Single() : null;
        return (resp.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), t);
    }

    private static object Chat(object temperature, string text = "Write a short poem about the sea.") => new Dictionary<string, object?>
    {
        ["model"] = "base", ["messages"] = new[] { new { role = "user", content = text } },
        ["max_tokens"] = 12, ["temperature"] = temperature, ["seed"] = 11,
    };

    [Fact]
    public async Task AutoSamplesAtTheHeadsPredictionAndAModelWithoutAHeadIsRefused()
    {
        var dir = ModelWithHead();
        using (var served = ServedModel.Load(dir, [], new ServeLimits(), name: "base"))
        {
            await using var app = ServeHost.Build(served, new ServeHostOptions { Port = 0, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning });
            await app.StartAsync();
            using var client = new HttpClient { BaseAddress = new Uri(ServeHost.BoundUrl(app)), Timeout = TimeSpan.FromMinutes(2) };

            // The reference: a separately loaded model, the prompt rendered through the tokenizer's chat template by hand,
            // the user turn's characters as the instruction segment (the rule training uses).
            using var reference = LoadedModel.Load(dir);
            Assert.True(reference.Model.HasTemperatureHead);
            var messages = new[] { new ChatMessage("user", "Write a short poem about the sea.") };
            var format = reference.PromptFormat(null);
            var ids = reference.Tokenizer.Encode(format.FormatConversation(messages), format.AddSpecialTokens).Ids;
            var segments = format.ConversationSegments(messages, reference.Tokenizer, ids);
            Assert.NotNull(segments);
            Assert.Contains((byte)InstructionSpans.Instruction, segments!);
            float expected = reference.Model.PredictTemperature(ids, segments);
            Assert.True(Math.Abs(expected - 1.025f) > 0.05f, $"the perturbed head should move τ off its initial value, got {expected}");

            var auto = await Post(client, Chat("auto"));
            Assert.Equal(HttpStatusCode.OK, auto.Status);
            Assert.NotNull(auto.Temperature);
            Assert.Equal((double)expected, double.Parse(auto.Temperature!, System.Globalization.CultureInfo.InvariantCulture), 6);

            // Sampling at that temperature given as a number, same seed: the same text.
            var given = await Post(client, Chat((double)expected));
            Assert.Equal(HttpStatusCode.OK, given.Status);
            Assert.Null(given.Temperature);
            Assert.Equal(given.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
                         auto.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

            var bad = await Post(client, Chat("hot"));
            Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
            Assert.Equal("temperature", bad.Body.GetProperty("error").GetProperty("param").GetString());
            await app.StopAsync();
        }

        // The shared serve model has no head: 400 naming the field.
        await using var plain = new RunningServer(adapters: false);
        var (status, body) = await plain.Post("/v1/chat/completions", Chat("auto"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("temperature", body.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("temperature head", body.GetProperty("error").GetProperty("message").GetString());
    }
}
