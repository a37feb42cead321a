using System.Text;
using InstructTune.Tokenizers;
using static InstructTune.Tests.Tokenizers.ReferenceFixtures;

namespace InstructTune.Tests.Tokenizers;

/// <summary>Streaming decode: pieces join to HF's full decode, and no piece ends inside a character.</summary>
public class StreamingDecoderTests
{
    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("gpt2")]
    [InlineData("qwen2.5")]
    public void PiecesJoinToTheReferenceDecodeAndNeverSplitACharacter(string name)
    {
        var tok = TokenizerLoader.Load(TestPaths.SharedTestData("tokenizers", name));
        int checkedStrings = 0;
        foreach (var r in Load($"ref_{name}.jsonl"))
        {
            var dec = new StreamingDecoder(tok, skipSpecialTokens: true);
            var sb = new StringBuilder();
            foreach (var id in r.IdsSpecial)
            {
                var piece = dec.Push(id);
                Assert.DoesNotContain('\uFFFD', piece.Length > 0 && !r.DecodedSkip.Contains('\uFFFD') ? piece : "");
                if (piece.Length > 0) Assert.False(char.IsHighSurrogate(piece[^1]), "piece ends inside a surrogate pair");
                sb.Append(piece);
            }
            sb.Append(dec.Flush());
            Assert.Equal(r.DecodedSkip, sb.ToString());
            checkedStrings++;
        }
        Assert.True(checkedStrings >= 300);
    }

    [Fact]
    public void EmojiFromByteFallbackTokensAppearsOnlyWhenComplete()
    {
        var tok = TokenizerLoader.Load(TestPaths.SharedTestData("tokenizers", "llama2"));
        // "▁", <0xF0>, <0x9F>, <0x98>, <0x80> is "😀" in Llama 2 (see ref_llama2.jsonl); hand-checked ids.
        var dec = new StreamingDecoder(tok);
        Assert.Equal("", dec.Push(tok.TokenToId("<0xF0>")!.Value));
        Assert.Equal("", dec.Push(tok.TokenToId("<0x9F>")!.Value));
        Assert.Equal("", dec.Push(tok.TokenToId("<0x98>")!.Value));
        Assert.Equal("\U0001F600", dec.Push(tok.TokenToId("<0x80>")!.Value));
        Assert.Equal("!", dec.Push(tok.TokenToId("!")!.Value));
    }
}
