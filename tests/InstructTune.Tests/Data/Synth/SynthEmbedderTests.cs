// The embeddings behind coherence, reference similarity and topic clusters: a remote /v1/embeddings (here `itune
// serve` in process on 127.0.0.1) gives the same vectors as the local model's pooled states; lexical vectors compare
// wording; k-means separates two obvious topics.
using InstructTune.Data.Synth;
using InstructTune.Serving;
using InstructTune.Tests.Serving;

namespace InstructTune.Tests.Data.Synth;

[Collection("Console")]
public class SynthEmbedderTests
{
    [Fact]
    public async Task Remote_embeddings_through_the_served_model_equal_the_local_ones()
    {
        await using var server = new RunningServer(adapters: false);
        var remote = new RemoteEmbedder(server.Url.TrimEnd('/') + "/v1", "base", null);
        var local = new LocalModelEmbedder(server.Served);
        string[] texts = ["Name the primary colours.", "Red, blue and yellow."];
        var a = await remote.EmbedAsync(texts, default);
        var b = await local.EmbedAsync(texts, default);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(ServeTestModel.Hidden, a[i].Length);
            Assert.Equal(1.0, SynthEmbedders.Cosine(a[i], b[i]), 5);
        }
        Assert.True(SynthEmbedders.Cosine(b[0], b[1]) < 0.9999);
    }

    [Fact]
    public void Lexical_vectors_compare_wording_and_kmeans_separates_topics()
    {
        var same = LexicalEmbedder.Embed("Give a recipe for tomato soup.");
        Assert.Equal(1.0, SynthEmbedders.Cosine(same, LexicalEmbedder.Embed("give a RECIPE for tomato soup")), 6);
        Assert.Equal(0.0, SynthEmbedders.Cosine(same, LexicalEmbedder.Embed("Why do galaxies look red?")), 6);
        var x = new[] { "tomato soup recipe", "tomato pasta recipe", "recipe for tomato salad", "red galaxies far away", "galaxies far away redshift" }
            .Select(LexicalEmbedder.Embed).ToArray();
        var assign = Clusters.KMeans(x, 2, new Random(3));
        Assert.Equal(assign[0], assign[1]);
        Assert.Equal(assign[0], assign[2]);
        Assert.Equal(assign[3], assign[4]);
        Assert.NotEqual(assign[0], assign[3]);
    }
}
