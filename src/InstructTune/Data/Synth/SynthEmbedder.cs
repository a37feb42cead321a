// Sentence embeddings for the data-generation filters (coherence, reference similarity, topic clusters). Three kinds
// (synth.embeddings): "lexical" — hashed word unigrams and bigrams (no model: similarity of wording, not of meaning);
// "endpoint" — the endpoint's own: for local:DIR the served model's mean-pooled final hidden state (what `itune serve`
// returns from /v1/embeddings), for a remote server its /v1/embeddings with synth.embedding_model.
using System.ClientModel;
using InstructTune.Common;
using InstructTune.Serving;
using Microsoft.Extensions.AI;
using OpenAI;

namespace InstructTune.Data.Synth;

public interface ISynthEmbedder
{
    string Name { get; }
    /// <summary>One L2-normalised vector per text.</summary>
    Task<float[][]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken ct);
}

public static class SynthEmbedders
{
    public static ISynthEmbedder Create(string kind, IChatClient chat, string endpoint, string embeddingModel, string? apiKey) => kind switch
    {
        "lexical" => new LexicalEmbedder(),
        "endpoint" when chat.GetService(typeof(LocalChatClient)) is LocalChatClient local => new LocalModelEmbedder(local.Served),
        "endpoint" when embeddingModel.Length == 0 => throw new InputException("synth.embedding_model: a remote endpoint's embeddings need a model name (or synth.embeddings=lexical)"),
        "endpoint" => new RemoteEmbedder(endpoint, embeddingModel, apiKey),
        _ => throw new InputException($"synth.embeddings: \"{kind}\" is not lexical or endpoint"),
    };

    public static double Cosine(float[] a, float[] b)
    {
        double dot = 0;
        for (int i = 0; i < a.Length; i++) dot += (double)a[i] * b[i];
        return dot;
    }

    public static float[] Normalise(float[] v)
    {
        double n = Math.Sqrt(v.Sum(x => (double)x * x));
        if (n > 0) for (int i = 0; i < v.Length; i++) v[i] = (float)(v[i] / n);
        return v;
    }
}

/// <summary>Hashed bag of lower-cased word unigrams and bigrams (1024 buckets, sqrt term frequency), L2-normalised.</summary>
public sealed class LexicalEmbedder : ISynthEmbedder
{
    public const int Dim = 1024;
    public string Name => "lexical";

    public Task<float[][]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken ct) =>
        Task.FromResult(texts.Select(Embed).ToArray());

    public static float[] Embed(string text)
    {
        var v = new float[Dim];
        var words = Evaluation.Metrics.RougeTokenizer.Tokenize(text, false);
        for (int i = 0; i < words.Count; i++)
        {
            v[Bucket(words[i])] += 1;
            if (i > 0) v[Bucket(words[i - 1] + " " + words[i])] += 1;
        }
        for (int i = 0; i < Dim; i++) v[i] = MathF.Sqrt(v[i]);
        return SynthEmbedders.Normalise(v);
    }

    // FNV-1a over UTF-16 code units: stable across runs and platforms (string.GetHashCode is randomised).
    private static int Bucket(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) { h ^= c; h *= 16777619; }
        return (int)(h % Dim);
    }
}

/// <summary>The local model's mean-pooled final hidden state, computed between decode steps of its engine.</summary>
public sealed class LocalModelEmbedder(ServedModel served) : ISynthEmbedder
{
    public string Name => "local:" + served.Name;

    public async Task<float[][]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken ct)
    {
        int maxPos = served.Model.Config.MaxPositionEmbeddings;
        var ids = texts.Select(t =>
        {
            var e = served.CompletionPromptIds(t.Length == 0 ? " " : t);
            return e.Length > maxPos ? e[..maxPos] : e;
        }).ToList();
        var vectors = await served.Engine.RunBetweenSteps(m => ids.Select(x => m.MeanPooledHidden(x, null)).ToList(), ct);
        return vectors.Select(v => SynthEmbedders.Normalise(v.ToArray())).ToArray();
    }
}

/// <summary>/v1/embeddings of an OpenAI-compatible server through Microsoft.Extensions.AI.</summary>
public sealed class RemoteEmbedder : ISynthEmbedder
{
    private readonly IEmbeddingGenerator<string, Embedding<float>> generator;

    public RemoteEmbedder(string endpoint, string model, string? apiKey)
    {
        var options = new OpenAIClientOptions { Endpoint = new Uri(endpoint) };
        generator = new OpenAI.Embeddings.EmbeddingClient(model, new ApiKeyCredential(apiKey ?? "no-key"), options).AsIEmbeddingGenerator();
        Name = model;
    }

    public string Name { get; }

    public async Task<float[][]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken ct)
    {
        var result = await generator.GenerateAsync(texts, cancellationToken: ct);
        return result.Select(e => SynthEmbedders.Normalise(e.Vector.ToArray())).ToArray();
    }
}

/// <summary>Spherical k-means (k-means++ seeding from the run's random source, 25 Lloyd iterations) over unit vectors:
/// the topic clusters Evol-Instruct tracks coverage with.</summary>
public static class Clusters
{
    public static int[] KMeans(float[][] x, int k, Random rng, int iterations = 25)
    {
        int n = x.Length;
        if (n == 0) return [];
        k = Math.Min(k, n);
        var centres = new List<float[]> { x[rng.Next(n)] };
        while (centres.Count < k)
        {
            var d = x.Select(v => centres.Min(c => 1 - SynthEmbedders.Cosine(v, c))).Select(v => Math.Max(v, 0)).ToArray();
            double total = d.Sum();
            if (total <= 0) break;
            double r = rng.NextDouble() * total;
            int pick = 0;
            for (double acc = d[0]; acc < r && pick < n - 1; acc += d[++pick]) { }
            centres.Add(x[pick]);
        }
        var assign = new int[n];
        for (int it = 0; it < iterations; it++)
        {
            bool changed = false;
            for (int i = 0; i < n; i++)
            {
                int best = 0; double bestSim = double.NegativeInfinity;
                for (int c = 0; c < centres.Count; c++)
                {
                    double s = SynthEmbedders.Cosine(x[i], centres[c]);
                    if (s > bestSim) { bestSim = s; best = c; }
                }
                if (assign[i] != best || it == 0) { changed |= assign[i] != best; assign[i] = best; }
            }
            for (int c = 0; c < centres.Count; c++)
            {
                var members = Enumerable.Range(0, n).Where(i => assign[i] == c).ToList();
                if (members.Count == 0) continue;
                var m = new float[x[0].Length];
                foreach (var i in members) for (int j = 0; j < m.Length; j++) m[j] += x[i][j];
                centres[c] = SynthEmbedders.Normalise(m);
            }
            if (!changed && it > 0) break;
        }
        return assign;
    }
}
