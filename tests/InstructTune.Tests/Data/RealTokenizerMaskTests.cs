using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Templates;
using InstructTune.Tokenizers;

namespace InstructTune.Tests.Data;

/// <summary>
/// Masks with the real tokenizers in ../shared/testdata/tokenizers, for every built-in template, single- and
/// multi-turn, and for the tokenizer's own Jinja chat template: every response character is covered by a learned
/// token, no learned token lies wholly outside a response span, and the learned tokens decode to the responses
/// (plus end-of-turn markers and EOS). Llama 2's " [/INST] " + "Paris" tokenizes as "▁Paris", a token that
/// straddles the prompt/response boundary: it must be learned.
/// </summary>
public class RealTokenizerMaskTests
{
    private static readonly Dictionary<string, ITokenizer> Tokenizers = new();

    private static ITokenizer Tok(string name)
    {
        lock (Tokenizers)
            return Tokenizers.TryGetValue(name, out var t) ? t : Tokenizers[name] = TokenizerLoader.Load(TestPaths.SharedTestData("tokenizers", name));
    }

    private static readonly InstructionRecord Single = new("Name the capital of France.", "Answer in one word.", "Paris", "geo");

    private static readonly InstructionRecord Chat = new("", "", "", "chat", Messages:
    [
        new ChatMessage("system", "You are terse."),
        new ChatMessage("user", "Capital of France?"),
        new ChatMessage("assistant", "Paris."),
        new ChatMessage("user", "And of Italy?"),
        new ChatMessage("assistant", "Rome, of course."),
    ]);

    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var tok in new[] { "llama2", "llama3", "qwen2.5" })
            foreach (var tpl in PromptTemplates.Names) d.Add(tok, tpl);
        return d;
    }

    private static void CheckCoverage(ITokenizer tok, RenderedText rendered, TokenizedExample e)
    {
        var enc = tok.Encode(rendered.Text, addSpecialTokens: true);
        var seg = rendered.CharSegments();
        for (int t = 0; t < enc.Ids.Length; t++)
        {
            var (s, end) = enc.Offsets[t];
            bool touchesResponse = false;
            for (int c = s; c < end; c++) touchesResponse |= seg[c] == Segment.Response;
            Assert.Equal(touchesResponse, e.Labels[t] != TokenizedExample.IgnoreIndex);
            Assert.Equal(touchesResponse, e.Segments[t] == (byte)Segment.Response);
        }
        // every response character is inside a learned token
        var covered = new bool[rendered.Text.Length];
        for (int t = 0; t < enc.Ids.Length; t++)
            if (e.Labels[t] != TokenizedExample.IgnoreIndex) for (int c = enc.Offsets[t].Start; c < enc.Offsets[t].End; c++) covered[c] = true;
        for (int c = 0; c < seg.Length; c++) if (seg[c] == Segment.Response) Assert.True(covered[c], $"response char {c} not learned");
        Assert.Equal(tok.EosId, e.Ids[^1]);
        Assert.Equal(tok.EosId, e.Labels[^1]);
    }

    private static string Learned(ITokenizer tok, TokenizedExample e) =>
        tok.Decode(e.Labels.Where(l => l != TokenizedExample.IgnoreIndex).ToArray());

    [Theory]
    [MemberData(nameof(Cases))]
    public void ExactlyTheResponsesAreLearned(string tokenizer, string template)
    {
        var tok = Tok(tokenizer);
        var tpl = PromptTemplates.Get(template);
        foreach (var record in new[] { Single, Chat })
        {
            var rendered = tpl.Render(record);
            var e = new ExampleTokenizer(tok, tpl).Tokenize(rendered, 0);
            CheckCoverage(tok, rendered, e);
            var learned = Learned(tok, e);
            var eos = tok.IdToToken(tok.EosId!.Value)!;
            foreach (var answer in record.IsChat ? new[] { "Paris.", "Rome, of course." } : ["Paris"])
                Assert.Contains(answer, learned);
            Assert.EndsWith(eos, learned);
            Assert.DoesNotContain("France", learned);
            Assert.DoesNotContain("Italy", learned);
        }
    }

    [Fact]
    public void Llama2MergesTheSpaceBeforeTheResponseIntoItsFirstToken()
    {
        var tok = Tok("llama2");
        var tpl = PromptTemplates.Get("llama2");
        var rendered = tpl.Render(Single);
        var enc = tok.Encode(rendered.Text, addSpecialTokens: true);
        int responseStart = rendered.Spans.Single(s => s.Segment == Segment.Response).Start;
        int straddling = Array.FindIndex(enc.Offsets, o => o.Start < responseStart && o.End > responseStart);
        Assert.True(straddling >= 0, "expected a token across the prompt/response boundary");
        Assert.Equal("▁Paris", tok.IdToToken(enc.Ids[straddling]));
        var e = new ExampleTokenizer(tok, tpl).Tokenize(rendered, 0);
        Assert.Equal(enc.Ids[straddling], e.Labels[straddling]);
        // The text's "</s>" is the EOS itself: nothing is appended after it.
        Assert.Equal(enc.Ids.Length, e.Length);
    }

    [Theory]
    [InlineData("qwen2.5", "<|im_end|>")]
    [InlineData("llama3", "<|eot_id|>")]
    public void TokenizerJinjaChatTemplateLearnsAssistantTurnsAndTheirEndMarkers(string tokenizer, string marker)
    {
        var tok = Tok(tokenizer);
        var tpl = new ChatTemplatePrompt(ChatTemplateLoader.FromTokenizer(TestPaths.SharedTestData("tokenizers", tokenizer)));
        var rendered = tpl.Render(Chat);
        var e = new ExampleTokenizer(tok, tpl).Tokenize(rendered, 0);
        if (tok.BosId is int bos) Assert.Equal(1, e.Ids.Count(id => id == bos) - (rendered.Text.Split(tok.IdToToken(bos)!).Length - 2));
        var responses = rendered.TextOf(Segment.Response);
        Assert.Equal("Paris." + marker + "Rome, of course." + marker, responses);
        var learned = Learned(tok, e);
        Assert.StartsWith("Paris." + marker, learned.TrimStart());
        Assert.DoesNotContain("Italy", learned);
    }
}
