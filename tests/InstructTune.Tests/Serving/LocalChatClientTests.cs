// The local: chat endpoint through Microsoft.Extensions.AI's IChatClient (the path the judge, back-translation
// and data generation take), with no network: answers equal greedy generation on the template-rendered prompt,
// and streaming concatenates to the same text. Also the JSON-prefix grammar behind response_format json_object.
using InstructTune.Generation;
using InstructTune.Serving;
using Microsoft.Extensions.AI;

namespace InstructTune.Tests.Serving;

public class LocalChatClientTests
{
    [Fact]
    public async Task Local_endpoint_answers_like_greedy_generation_without_network()
    {
        using var client = ChatClients.Create("local:" + ServeTestModel.Model);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 16 };
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "What is a judge?")], options);
        var reference = typeof(ServeTests).GetMethod("Reference", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .Invoke(null, ["What is a judge?", 16, null]) as string;
        Assert.Equal(reference, response.Text);
        Assert.True(response.Usage!.OutputTokenCount > 0);
        var streamed = string.Concat(await client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "What is a judge?")], options)
            .Select(u => u.Text).ToListAsync());
        Assert.Equal(reference, streamed);
        Assert.ThrowsAny<Exception>(() => ChatClients.Create("local:/no/such/model"));
    }

    [Fact]
    public async Task Local_endpoint_with_adapter_uses_it()
    {
        using var plain = ChatClients.Create("local:" + ServeTestModel.Model);
        using var tuned = ChatClients.Create("local:" + ServeTestModel.Model + "+" + ServeTestModel.AdapterA);
        var o = new ChatOptions { Temperature = 0, MaxOutputTokens = 12 };
        var a = await plain.GetResponseAsync([new ChatMessage(ChatRole.User, "Hello")], o);
        var b = await tuned.GetResponseAsync([new ChatMessage(ChatRole.User, "Hello")], o);
        Assert.NotEqual(a.Text, b.Text);
    }

    [Fact]
    public async Task Penalties_reach_decoding_and_options_that_cannot_act_are_refused()
    {
        using var client = ChatClients.Create("local:" + ServeTestModel.Model);
        List<ChatMessage> q = [new ChatMessage(ChatRole.User, "Count words.")];
        var plain = await client.GetResponseAsync(q, new ChatOptions { Temperature = 0, MaxOutputTokens = 24 });
        var penalised = await client.GetResponseAsync(q, new ChatOptions { Temperature = 0, MaxOutputTokens = 24, PresencePenalty = -2, FrequencyPenalty = -1 });
        // Negative penalties favour tokens already written, so the output changes; the same settings through the served path (checked against OpenAI's formula in ServeSamplingFieldsTests).
        var served = ((LocalChatClient)client).Served;
        var ids = served.ChatPromptIds([new InstructTune.Templates.ChatMessage("user", "Count words.")]);
        var expected = await served.Start(ids, new SamplingRequest { Temperature = 0, MaxTokens = 24, PresencePenalty = -2, FrequencyPenalty = -1 }, null, default)[0].ReadAllAsync();
        Assert.Equal(expected, penalised.Text);
        Assert.NotEqual(plain.Text, penalised.Text);

        async Task Refused(ChatOptions o, string what, List<ChatMessage>? messages = null)
        {
            var e = await Assert.ThrowsAsync<ServeRequestException>(() => client.GetResponseAsync(messages ?? q, o));
            Assert.Contains(what, e.Message);
        }
        await Refused(new ChatOptions { TopK = 5 }, "TopK");
        await Refused(new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "one")] }, "Tools");
        await Refused(new ChatOptions { AdditionalProperties = new() { ["top_k"] = 3 } }, "top_k");
        await Refused(new ChatOptions { AdditionalProperties = new() { [LocalChatClient.MinTokensProperty] = "5" } }, "min_tokens");
        await Refused(new ChatOptions(), "contents", [new ChatMessage(ChatRole.User, [new TextContent("look"), new DataContent(new byte[] { 1, 2 }, "image/png")])]);
    }

    [Theory]
    [InlineData("", JsonPrefix.State.Prefix)]
    [InlineData("  {", JsonPrefix.State.Prefix)]
    [InlineData("{\"a\": [1, -2.5e3, true, null, {\"b\": \"x\\\"y\"}]}", JsonPrefix.State.Complete)]
    [InlineData("{\"a\": tr", JsonPrefix.State.Prefix)]
    [InlineData("{\"a\": 1.", JsonPrefix.State.Prefix)]
    [InlineData("{\"a\": 01", JsonPrefix.State.Invalid)]
    [InlineData("{\"a\" 1", JsonPrefix.State.Invalid)]
    [InlineData("{\"a\": 1,}", JsonPrefix.State.Invalid)]
    [InlineData("[1]", JsonPrefix.State.Invalid)]
    [InlineData("{} x", JsonPrefix.State.Invalid)]
    [InlineData("{\"a\": \"\\q\"}", JsonPrefix.State.Invalid)]
    [InlineData("{\"a\": \"\\u12", JsonPrefix.State.Prefix)]
    public void Json_prefix_grammar(string text, JsonPrefix.State expected) => Assert.Equal(expected, JsonPrefix.Check(text));
}
