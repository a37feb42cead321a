using InstructTune.Tokenizers;
using static InstructTune.Tests.Tokenizers.ReferenceFixtures;

namespace InstructTune.Tests.Tokenizers;

/// <summary>The SentencePiece .model files against python3-sentencepiece 0.1.97 on the same corpus.</summary>
public class SentencePieceReferenceTests
{
    public static TheoryData<string, string> Models => new()
    {
        { "llama2/tokenizer.model", "ref_spm_llama2.jsonl" },
        { "spm-unigram-t5/spiece.model", "ref_spm_t5.jsonl" },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void MatchesSentencePiece(string model, string refFile)
    {
        var tok = TokenizerLoader.Load(TestPaths.SharedTestData("tokenizers", model));
        var corpus = Corpus();
        var refs = Load(refFile);
        var failures = new List<string>();
        for (int i = 0; i < corpus.Length; i++)
        {
            var r = refs[i];
            var plain = tok.Encode(corpus[i]);
            var special = tok.Encode(corpus[i], addSpecialTokens: true);
            if (!plain.Ids.SequenceEqual(r.Ids)) failures.Add($"#{i} {Show(corpus[i])} ids {Show(plain.Ids)} expected {Show(r.Ids)}");
            if (!special.Ids.SequenceEqual(r.IdsSpecial)) failures.Add($"#{i} ids+special {Show(special.Ids)} expected {Show(r.IdsSpecial)}");
            var dec = tok.Decode(r.IdsSpecial);
            if (dec != r.Decoded) failures.Add($"#{i} decode {Show(dec)} expected {Show(r.Decoded)}");
            var decSkip = tok.Decode(r.IdsSpecial, skipSpecialTokens: true);
            if (decSkip != r.DecodedSkip) failures.Add($"#{i} decode(skip) {Show(decSkip)} expected {Show(r.DecodedSkip)}");
            // Offsets: each token's span lies inside the text and spans never go backwards.
            int prev = 0;
            foreach (var (s, e) in plain.Offsets)
            {
                if (s < 0 || e > corpus[i].Length || s > e || s < prev) { failures.Add($"#{i} bad offsets {string.Join(" ", plain.Offsets)}"); break; }
                prev = s;
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches:\n" + string.Join("\n", failures.Take(15)));
    }

    [Fact]
    public void Llama2ModelAndTokenizerJsonAgreeOnOffsets()
    {
        // Where both formats give the same ids, the .model offsets must equal HF's tokenizer.json offsets.
        var spm = TokenizerLoader.Load(TestPaths.SharedTestData("tokenizers", "llama2", "tokenizer.model"));
        var corpus = Corpus();
        var refs = Load("ref_llama2.jsonl");
        int compared = 0;
        for (int i = 0; i < corpus.Length; i++)
        {
            var enc = spm.Encode(corpus[i]);
            if (!enc.Ids.SequenceEqual(refs[i].Ids)) continue;
            compared++;
            Assert.Equal(refs[i].Offsets!.Select(o => (o[0], o[1])), enc.Offsets);
        }
        Assert.True(compared > 250, $"only {compared} strings had equal ids");
    }
}
