using InstructTune.Templates;

namespace InstructTune.Tests.Templates;

/// <summary>One loaded template renders from many threads at once (the data pipeline renders in parallel).</summary>
public class ConcurrencyTests
{
    [Fact]
    public void ParallelRendersMatchSequentialOnes()
    {
        var template = ChatTemplateLoader.FromTokenizer(TestPaths.SharedTestData("tokenizers", "qwen2.5"));
        var conversations = Enumerable.Range(0, 64).Select(i => new ChatMessage[]
        {
            new("system", $"sys {i}"), new("user", new string('u', i % 7) + " q" + i), new("assistant", " a" + i + " "),
        }).ToArray();
        var expected = conversations.Select(c => template.Render(c, true)).ToArray();
        var actual = new RenderedChat[conversations.Length];
        Parallel.For(0, conversations.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => actual[i] = template.Render(conversations[i], true));
        for (int i = 0; i < conversations.Length; i++)
        {
            Assert.Equal(expected[i].Text, actual[i].Text);
            Assert.Equal(expected[i].Spans, actual[i].Spans);
        }
    }
}
