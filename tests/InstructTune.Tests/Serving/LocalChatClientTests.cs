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
