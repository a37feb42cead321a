using System.Text.Json;

namespace InstructTune.Tests.Tokenizers;

/// <summary>The committed corpus and reference lines (tools/golden/tokenizers-node/make_refs.js for tokenizer.json,
/// tools/golden/tokenizers_spm.py for .model files).</summary>
internal static class ReferenceFixtures
{
    public sealed record Ref(int[] Ids, int[][]? Offsets, int[] IdsSpecial, string Decoded, string DecodedSkip);

    public static string[] Corpus() =>
        File.ReadLines(TestPaths.Fixtures("tokenizers", "corpus.jsonl"))
            .Select(l => InstructTune.Tokenizers.JsonStringLiteral.Read(JsonDocument.Parse(l).RootElement.GetProperty("text"))).ToArray();

    public static Ref[] Load(string file) =>
        File.ReadLines(TestPaths.Fixtures("tokenizers", file)).Select(l =>
        {
            var r = JsonDocument.Parse(l).RootElement;
            int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
            return new Ref(Ints(r.GetProperty("ids")),
                r.TryGetProperty("offsets", out var o) ? o.EnumerateArray().Select(Ints).ToArray() : null,
                Ints(r.GetProperty("ids_special")), r.GetProperty("decoded").GetString()!,
                r.GetProperty("decoded_skip").GetString()!);
        }).ToArray();

    public static string Show(string s) => JsonSerializer.Serialize(s);
    public static string Show(IEnumerable<int> ids) => "[" + string.Join(",", ids) + "]";
}
