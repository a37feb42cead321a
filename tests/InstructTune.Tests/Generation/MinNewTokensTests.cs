// GenerationOptions.MinNewTokens (vLLM's min_tokens): before that many new tokens a stop token is never chosen and a
// stop string never ends the sequence; from then on both stop it as usual. Checked against the PyTorch greedy golden:
// with the masked token absent the greedy path is the golden one up to the point it would have been chosen.
using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Tests.Models;

namespace InstructTune.Tests.Generation;

public class MinNewTokensTests
{
    // A golden continuation whose first three tokens differ.
    private static (int[] Prompt, int[] Greedy) Golden() =>
        GoldenFixture.Load(Path.Combine(GoldenFixture.Dir("llama_gqa_f32"), "expected.json")).Greedy
            .First(g => g.GeneratedIds.Length >= 4 && g.GeneratedIds[..3].Distinct().Count() == 3) is var g ? (g.PromptIds, g.GeneratedIds) : default;

    private static DecodeSequence Decode(InferenceModel model, int[] prompt, GenerationOptions o)
    {
        var decoder = new BatchDecoder(model);
        var s = decoder.Add(prompt, o);
        for (int i = 0; decoder.Count > 0; i++) { decoder.Step(); Assert.True(i < 100); }
        return s;
    }

    [Fact]
    public void Stop_tokens_wait_for_min_new_tokens()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        var (prompt, greedy) = Golden();
        // The golden's second token as the stop token: without a minimum greedy decoding ends on it at step 2.
        var plain = Decode(model, prompt, new GenerationOptions { MaxNewTokens = 8, StopTokenIds = [greedy[1]] });
        Assert.Equal(greedy[..2], plain.Generated);
        Assert.Equal("stop_token", plain.StopReason);
        // Minimum 2: step 2 cannot pick it, so it takes another token and the sequence goes on.
        var held = Decode(model, prompt, new GenerationOptions { MaxNewTokens = 8, StopTokenIds = [greedy[1]], MinNewTokens = 2 });
        Assert.Equal(greedy[0], held.Generated[0]);
        Assert.NotEqual(greedy[1], held.Generated[1]);
        Assert.True(held.Generated.Count > 2);
        // Minimum 1 is no constraint here (the first token is not the stop token): the plain result.
        Assert.Equal(plain.Generated, Decode(model, prompt, new GenerationOptions { MaxNewTokens = 8, StopTokenIds = [greedy[1]], MinNewTokens = 1 }).Generated);
    }

    [Fact]
    public void Stop_strings_wait_for_min_new_tokens()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        var (prompt, greedy) = Golden();
        // A "decoder" that spells each id: the stop string is the first token's spelling, seen after one token.
        static string Spell(IReadOnlyList<int> ids) => string.Join(",", ids);
        var stop = new GenerationOptions { MaxNewTokens = 6, StopStrings = [$"{greedy[0]}"], Decode = Spell };
        Assert.Equal(1, Decode(model, prompt, stop).Generated.Count);
        var held = Decode(model, prompt, stop with { MinNewTokens = 3 });
        Assert.Equal(greedy[..3], held.Generated);
        Assert.Equal("stop_string", held.StopReason);
    }
}
