using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Tokenizers;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// The per-token segments <c>itune eval run</c> hands an instruction-aware model (or iPEFT) at inference are the ones
/// training gave the same prompt tokens: for every built-in template, a format string and three real tokenizers, the prompt's
/// segments equal the training example's segments over the ids both share (a token straddling the prompt/response
/// boundary is a response token in training and is not in the prompt), they mark instruction and input tokens
/// apart, a left-truncated prompt keeps its tail's segments, and the raw format gives none.
/// </summary>
public class PromptSegmentsTests
{
    private static readonly Dictionary<string, ITokenizer> Tokenizers = new();

    private static ITokenizer Tok(string name)
    {
        lock (Tokenizers)
            return Tokenizers.TryGetValue(name, out var t) ? t : Tokenizers[name] = TokenizerLoader.Load(TestPaths.SharedTestData("tokenizers", name));
    }

    private static readonly InstructionRecord WithInput = new("Translate the sentence into French.", "The cat sleeps on the warm mat.", "Le chat dort sur le tapis chaud.", "mt");
    private static readonly InstructionRecord NoInput = new("Name three primary colours.", "", "Red, yellow and blue.", "qa");

    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var tok in new[] { "llama2", "llama3", "qwen2.5" })
            foreach (var tpl in PromptTemplates.Names.Append("{instruction}\nInput: {input}\nAnswer:{output}")) d.Add(tok, tpl);  // + the quickstart's format string
        return d;
    }

    [Theory, MemberData(nameof(Cases))]
    public void PromptSegmentsEqualTrainingSegments(string tokName, string template)
    {
        var tok = Tok(tokName);
        var formatter = PromptFormatter.Create(template, TestPaths.SharedTestData("tokenizers", tokName));
        foreach (var record in new[] { WithInput, NoInput })
        {
            var ids = tok.Encode(formatter.Format(record), formatter.AddSpecialTokens).Ids;
            var segs = formatter.PromptSegments(record, tok, ids);
            Assert.NotNull(segs);
            Assert.Equal(ids.Length, segs!.Length);

            var train = new ExampleTokenizer(tok, PromptTemplates.Get(template)).Tokenize(record, 0);
            int common = 0;
            while (common < ids.Length && common < train.Ids.Length && ids[common] == train.Ids[common]) common++;
            Assert.True(common >= ids.Length - 1, $"{tokName}/{template}: prompt and training ids share only {common} of {ids.Length}");
            Assert.Equal(train.Segments.AsSpan(0, common).ToArray(), segs.AsSpan(0, common).ToArray());
            Assert.DoesNotContain((byte)Segment.Response, segs);

            Assert.Contains((byte)Segment.Instruction, segs);
            Assert.Equal(record.Input.Length > 0, segs.Contains((byte)Segment.Input));
            // The instruction tokens decode to the instruction; a token merging its last character with template text
            // (BPE's ".<" before "<|im_end|>"-style markup) is an instruction token, as in training.
            var instr = ids.Where((_, t) => segs[t] == (byte)Segment.Instruction).ToArray();
            var decoded = tok.Decode(instr, skipSpecialTokens: true).Trim();
            Assert.StartsWith(record.Instruction, decoded);
            Assert.True(decoded.Length <= record.Instruction.Length + 2, $"instruction tokens decode to '{decoded}'");

            // Left truncation (FormattedPromptIds keeps the tail): the tail keeps its segments.
            var tail = ids[^6..];
            Assert.Equal(segs[^6..], formatter.PromptSegments(record, tok, tail));
            // Ids that are not this prompt's encoding get none.
            Assert.Null(formatter.PromptSegments(record, tok, [.. ids[..^1], ids[^1] == 5 ? 6 : 5]));
        }
    }

    [Fact]
    public void FormatsWithoutSpansGiveNone()
    {
        var tok = Tok("qwen2.5");
        var ids = tok.Encode(PromptFormatter.Raw.Format(WithInput), true).Ids;
        Assert.Null(PromptFormatter.Raw.PromptSegments(WithInput, tok, ids));
        // Chat templates have spans now: ChatPromptSegmentsTests.
    }
}
