// itune serve's OpenAI/vLLM sampling fields over HTTP: min_tokens, presence_penalty, frequency_penalty and
// logit_bias act on decoding (checked against a greedy loop written here from the published formulas, each step a
// fresh full forward: no decoder, no cache), and every accepted field that cannot act is refused with a 400
// naming it (stream_options without stream, a non-string user).
using System.Net;
using System.Text.Json;
using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Serving;
using InstructTune.Tokenizers;

namespace InstructTune.Tests.Serving;

[Collection("Console")]
public class ServeSamplingFieldsTests
{
    private const string Prompt = "The weather today is";

    private static Dictionary<string, object?> Completion(int maxTokens, params (string Key, object? Value)[] extra)
    {
        var d = new Dictionary<string, object?> { ["model"] = "base", ["prompt"] = Prompt, ["max_tokens"] = maxTokens, ["temperature"] = 0 };
        foreach (var (k, v) in extra) d[k] = v;
        return d;
    }

    // OpenAI's documented penalties, by hand: mu[j] += bias[j]; mu[j] -= c[j]·frequency + (c[j] > 0)·presence, with
    // c[j] counting the generated tokens; greedy; the EOS id 2 ends the text.
    private static string Reference(int maxTokens, double presence, double frequency, IReadOnlyDictionary<int, float> bias)
    {
        using var model = InferenceModel.Load(ServeTestModel.Model);
        var tok = TokenizerLoader.Load(ServeTestModel.Model);
        var ids = tok.Encode(Prompt, addSpecialTokens: true).Ids;
        var generated = new List<int>();
        for (int step = 0; step < maxTokens; step++)
        {
            int[] seq = [.. ids, .. generated];
            var row = model.Forward([new SequenceChunk(model.CreateCache(seq.Length), seq)]);
            var mu = row.Select(x => (double)x).ToArray();
            foreach (var (id, b) in bias) mu[id] += b;
            foreach (var g in generated.Distinct())
                mu[g] -= generated.Count(x => x == g) * frequency + presence;
            int best = 0;
            for (int j = 1; j < mu.Length; j++) if (mu[j] > mu[best]) best = j;
            if (best == 2) break;
            generated.Add(best);
        }
        return tok.Decode(generated.ToArray(), skipSpecialTokens: true);
    }

    private static string Text(JsonElement body) => body.GetProperty("choices")[0].GetProperty("text").GetString()!;

    [Fact]
    public async Task Presence_frequency_penalties_and_logit_bias_follow_the_openai_formula()
    {
        await using var s = new RunningServer(adapters: false);
        // Two favoured tokens: 500 wins until its frequency and presence penalties bring it below 600, which then
        // takes turns with it; both sink below the model's own choices after a few uses. EOS is banned.
        var bias = new Dictionary<int, float> { [500] = 1.0f, [600] = 0.8f, [2] = -100f };
        var (st, plain) = await s.Post("/v1/completions", Completion(12, ("logit_bias", new Dictionary<string, float> { ["2"] = -100f })));
        Assert.Equal(HttpStatusCode.OK, st);
        var (st2, pen) = await s.Post("/v1/completions", Completion(12, ("presence_penalty", 0.15), ("frequency_penalty", 0.25),
            ("logit_bias", bias.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value))));
        Assert.Equal(HttpStatusCode.OK, st2);
        Assert.Equal(Reference(12, 0, 0, new Dictionary<int, float> { [2] = -100f }), Text(plain));
        Assert.Equal(Reference(12, 0.15, 0.25, bias), Text(pen));
        Assert.NotEqual(Text(plain), Text(pen));   // the fields change the output (the test can fail if they are ignored)
        // The bias alone repeats token 500; the penalties are what break the repetition.
        var (_, biased) = await s.Post("/v1/completions", Completion(12, ("logit_bias", bias.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value))));
        Assert.Equal(Reference(12, 0, 0, bias), Text(biased));
        Assert.NotEqual(Text(biased), Text(pen));

    }

    [Fact]
    public async Task Min_tokens_holds_off_the_end_of_sequence_token()
    {
        await using var s = new RunningServer(adapters: false);
        // +100 on EOS: without min_tokens the completion ends at once; with min_tokens 5 it ends right after 5 tokens.
        var eos = new Dictionary<string, float> { ["2"] = 100f };
        var (st, early) = await s.Post("/v1/completions", Completion(16, ("logit_bias", eos)));
        Assert.Equal(HttpStatusCode.OK, st);
        Assert.Equal("stop", early.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.True(early.GetProperty("usage").GetProperty("completion_tokens").GetInt32() <= 1);
        var (st2, held) = await s.Post("/v1/chat/completions", new Dictionary<string, object?>
        {
            ["model"] = "base", ["messages"] = new[] { new { role = "user", content = "hi" } }, ["max_tokens"] = 16,
            ["temperature"] = 0, ["logit_bias"] = eos, ["min_tokens"] = 5,
        });
        Assert.Equal(HttpStatusCode.OK, st2);
        Assert.Equal("stop", held.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        int n = held.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        Assert.InRange(n, 5, 6);   // five tokens, then the end-of-sequence token (counted or not)
    }

    [Theory]
    [InlineData("min_tokens", "-1")]
    [InlineData("min_tokens", "9")]          // above max_tokens 4
    [InlineData("min_tokens", "\"five\"")]
    [InlineData("presence_penalty", "2.5")]
    [InlineData("frequency_penalty", "-3")]
    [InlineData("logit_bias", "{\"abc\": 1}")]
    [InlineData("logit_bias", "{\"99999999\": 1}")]
    [InlineData("logit_bias", "{\"5\": 200}")]
    [InlineData("logit_bias", "[1, 2]")]
    [InlineData("stream_options", "{\"include_usage\": true}")]   // without stream: true
    [InlineData("user", "42")]
    public async Task Bad_sampling_fields_get_a_400_naming_the_field(string field, string json)
    {
        await using var s = new RunningServer(adapters: false);
        var body = Completion(4);
        body[field] = JsonDocument.Parse(json).RootElement.Clone();
        var (st, e) = await s.Post("/v1/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, st);
        Assert.Equal(field, e.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Stream_options_takes_only_include_usage_user_is_logged_and_message_names_are_refused()
    {
        await using var s = new RunningServer(adapters: false);
        var (st, e) = await s.Post("/v1/completions", Completion(2, ("stream", true), ("stream_options", new { include_usage = true, extra = 1 })));
        Assert.Equal(HttpStatusCode.BadRequest, st);
        Assert.Contains("extra", e.GetProperty("error").GetProperty("message").GetString());
        var (ok, _) = await s.Post("/v1/completions", Completion(2, ("user", "alice")));
        Assert.Equal(HttpStatusCode.OK, ok);
        // A chat message's participant name cannot reach the prompt (rendered from role and content): refused, naming it.
        var (named, ne) = await s.Post("/v1/chat/completions", new Dictionary<string, object?>
        {
            ["model"] = "base", ["messages"] = new[] { new { role = "user", content = "hi", name = "bob" } }, ["max_tokens"] = 2,
        });
        Assert.Equal(HttpStatusCode.BadRequest, named);
        Assert.Equal("messages[0].name", ne.GetProperty("error").GetProperty("param").GetString());
        var (emb, _) = await s.Post("/v1/embeddings", new { model = "base", input = "hi", user = "alice" });
        Assert.Equal(HttpStatusCode.OK, emb);
    }
}
