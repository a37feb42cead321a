using InstructTune.Tokenizers;
using InstructTune.Tokenizers.Training;
using static InstructTune.Tests.Tokenizers.ReferenceFixtures;

namespace InstructTune.Tests.Tokenizers;

/// <summary>The byte-level BPE trainer: the committed trained tokenizer (itune train-tokenizer on
/// train_corpus.txt, vocab 600) encodes the corpus exactly as HF tokenizers does after loading the same file
/// (ref_trained.jsonl), and retraining reproduces that file byte for byte.</summary>
public class TrainerTests
{
    private static readonly string TrainedDir = TestPaths.Fixtures("tokenizers", "trained");

    [Fact]
    public void TrainedTokenizerEncodesLikeHuggingFace()
    {
        var tok = TokenizerLoader.Load(TrainedDir);
        Assert.Equal(0, tok.BosId);
        Assert.Equal(1, tok.EosId);
        Assert.Equal(2, tok.PadId);
        var corpus = Corpus();
        var refs = Load("ref_trained.jsonl");
        for (int i = 0; i < corpus.Length; i++)
        {
            Assert.Equal(refs[i].Ids, tok.Encode(corpus[i]).Ids);
            Assert.Equal(refs[i].IdsSpecial, tok.Encode(corpus[i], addSpecialTokens: true).Ids);
            Assert.Equal(refs[i].Offsets!.Select(o => (o[0], o[1])), tok.Encode(corpus[i]).Offsets);
            Assert.Equal(refs[i].Decoded, tok.Decode(refs[i].IdsSpecial));
            Assert.Equal(refs[i].DecodedSkip, tok.Decode(refs[i].IdsSpecial, skipSpecialTokens: true));
        }
    }

    [Fact]
    public void RetrainingReproducesTheCommittedFiles()
    {
        var dir = Path.Combine(Path.GetTempPath(), "itune-train-" + Guid.NewGuid().ToString("N"));
        try
        {
            var o = new BpeTrainerOptions(600);
            ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(File.ReadLines(TestPaths.Fixtures("tokenizers", "train_corpus.txt")), o), o, dir);
            Assert.Equal(File.ReadAllText(Path.Combine(TrainedDir, "tokenizer.json")), File.ReadAllText(Path.Combine(dir, "tokenizer.json")));
            Assert.Equal(File.ReadAllText(Path.Combine(TrainedDir, "tokenizer_config.json")), File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void MergesFollowPairFrequencyOnAHandWorkedCorpus()
    {
        // Words "aaab", "Ġaaab" x2, "Ġab" x2: pair counts (a,a)=6, (a,b)=5, (Ġ,a)=4 → first merge "a a"; then
        // the words hold [aa,a,b] and [a,b]: (a,b)=5, (aa,a)=3, (Ġ,aa)=2 → "a b".
        var r = ByteLevelBpeTrainer.Train(["aaab aaab aaab ab ab"], new BpeTrainerOptions(3 + 256 + 2, MinFrequency: 1));
        Assert.Equal([("a", "a"), ("a", "b")], r.Merges);
    }
}
