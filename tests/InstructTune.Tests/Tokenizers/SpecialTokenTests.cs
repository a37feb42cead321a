using InstructTune.Tokenizers;

namespace InstructTune.Tests.Tokenizers;

/// <summary>BOS/EOS/PAD/UNK as the data pipeline sees them, hand-read from each tokenizer_config.json
/// (or the .model's trainer_spec), plus batch encoding order.</summary>
public class SpecialTokenTests
{
    [Theory]
    [InlineData("llama2", 1, 2, 0, 0, 32000)]
    [InlineData("llama2/tokenizer.model", 1, 2, 0, 0, 32000)]
    [InlineData("llama3", 128000, 128001, 128001, null, 128256)]
    [InlineData("phi3-mini", 1, 32000, 32000, 0, 32011)] // added tokens 32000-32010
    [InlineData("qwen2.5", null, 151645, 151643, null, 151665)]
    [InlineData("gpt2", null, 50256, null, null, 50257)]
    [InlineData("spm-unigram-t5/spiece.model", null, 1, 0, 2, 32000)]
    public void SpecialIds(string path, int? bos, int? eos, int? pad, int? unk, int vocab)
    {
        var tok = TokenizerLoader.Load(TestPaths.SharedTestData(["tokenizers", .. path.Split('/')]));
        Assert.Equal(bos, tok.BosId);
        Assert.Equal(eos, tok.EosId);
        Assert.Equal(pad, tok.PadId);
        Assert.Equal(unk, tok.UnkId);
        Assert.Equal(vocab, tok.VocabSize);
        if (eos.HasValue) Assert.True(tok.IsSpecialToken(eos.Value));
    }

    [Fact]
    public void BatchEncodeKeepsInputOrderAndEqualsSingleEncodes()
    {
        var tok = TokenizerLoader.Load(TestPaths.SharedTestData("tokenizers", "llama3"));
        var corpus = ReferenceFixtures.Corpus();
        var batch = tok.EncodeBatch(corpus, addSpecialTokens: true);
        for (int i = 0; i < corpus.Length; i++)
        {
            var one = tok.Encode(corpus[i], addSpecialTokens: true);
            Assert.Equal(one.Ids, batch[i].Ids);
            Assert.Equal(one.Offsets, batch[i].Offsets);
        }
    }
}
