using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Templates;

namespace InstructTune.Tests.Data;

/// <summary>
/// For every template, single-turn and multi-turn: exactly the response tokens (plus EOS) are learned, and segment
/// ids mark the right spans. Expected token strings are written out by hand from the template definitions.
/// </summary>
public class MaskTests
{
    private static readonly InstructionRecord Single = new("Name the capital", "of France", "Paris is it", "t");

    private static readonly InstructionRecord Chat = new("", "", "", "t", Messages:
    [
        new ChatMessage("system", "Be brief"),
        new ChatMessage("user", "Hi there"),
        new ChatMessage("assistant", "Hello you"),
        new ChatMessage("user", "Bye now"),
        new ChatMessage("assistant", "Farewell friend"),
    ]);

    /// <summary>The learned token strings and the decoded text of each segment.</summary>
    private static (List<string> Learned, string Instruction, string Input, string Response) Run(IPromptTemplate template, InstructionRecord r, WordTokenizer? tok = null)
    {
        tok ??= new WordTokenizer();
        var e = new ExampleTokenizer(tok, template).Tokenize(r, 0);
        var learned = e.Labels.Where(l => l != TokenizedExample.IgnoreIndex).Select(l => tok.IdToToken(l)!).ToList();
        string Seg(Segment s) => string.Concat(e.Ids.Where((_, i) => e.Segments[i] == (byte)s).Select(id => tok.IdToToken(id)));
        // Labels equal ids wherever they are set.
        for (int i = 0; i < e.Length; i++) Assert.True(e.Labels[i] == TokenizedExample.IgnoreIndex || e.Labels[i] == e.Ids[i]);
        // BOS first, EOS last and learned.
        Assert.Equal(1, e.Ids[0]);
        Assert.Equal(2, e.Ids[^1]);
        Assert.Equal(2, e.Labels[^1]);
        return (learned, Seg(Segment.Instruction), Seg(Segment.Input), Seg(Segment.Response));
    }

    [Fact]
    public void AlpacaLearnsOnlyResponseAndEosAndMergedBoundaryToken()
    {
        var (learned, ins, inp, resp) = Run(new AlpacaTemplate(), Single);
        // "### Response:\n" + "Paris": the tokenizer glues "\n" to "Paris", a token crossing the boundary: learned.
        Assert.Equal(["\nParis", " is", " it", "</s>"], learned);
        Assert.Equal("\nName the capital", ins);      // "\n" of "Instruction:\n" merged into "Name"
        Assert.Equal("\nof France", inp);
        Assert.Equal("\nParis is it</s>", resp);
    }

    [Fact]
    public void ChatMlSingleAndMultiTurn()
    {
        var t = PromptTemplates.Get("chatml");
        var (learned, ins, inp, _) = Run(t, Single);
        // "<|im_start|>assistant\nParis is it<|im_end|>\n" → learned "\nParis", " is", " it", "<|im_end|>", then EOS.
        Assert.Equal(["\nParis", " is", " it", "<|im_end|>", "</s>"], learned);
        Assert.Equal("\nName the capital", ins);
        Assert.Equal("\n\nof France", inp);
        var chat = Run(t, Chat);
        Assert.Equal(["\nHello", " you", "<|im_end|>", "\nFarewell", " friend", "<|im_end|>", "</s>"], chat.Learned);
        Assert.Equal("\nBe brief\nHi there\nBye now", chat.Instruction);
    }

    [Fact]
    public void Llama3SingleAndMultiTurn()
    {
        var t = PromptTemplates.Get("llama3");
        var (learned, _, _, _) = Run(t, Single);
        Assert.Equal(["\n\nParis", " is", " it", "<|eot_id|>", "</s>"], learned);
        var chat = Run(t, Chat);
        Assert.Equal(["\n\nHello", " you", "<|eot_id|>", "\n\nFarewell", " friend", "<|eot_id|>", "</s>"], chat.Learned);
    }

    [Fact]
    public void Llama2EndsEachAssistantTurnWithALearnedEos()
    {
        var t = PromptTemplates.Get("llama2");
        var (learned, _, inp, _) = Run(t, Single);
        // "[INST] Name the capital\n\nof France [/INST] Paris is it </s>": the text's </s> is the EOS, none appended.
        Assert.Equal([" Paris", " is", " it", " ", "</s>"], learned);
        Assert.Equal("\n\nof France", inp);
        var chat = Run(t, Chat);
        Assert.Equal([" Hello", " you", " ", "</s>", " Farewell", " friend", " ", "</s>"], chat.Learned);
        Assert.Contains("<<", chat.Instruction + "<<");  // system text is instruction
        Assert.Contains(" brief", chat.Instruction);
    }

    [Fact]
    public void FormatStringDropsTheInputLineWhenEmpty()
    {
        var t = PromptTemplates.Get("Q: {instruction}\\n{input}\\nA: {output}");
        Assert.Equal("Q: Name the capital\nof France\nA: Paris is it", t.Render(Single).Text);
        Assert.Equal("Q: Say\nA: ok", t.Render(new InstructionRecord("Say", "", "ok", "t")).Text);
        var (learned, _, _, _) = Run(t, Single);
        Assert.Equal([" Paris", " is", " it", "</s>"], learned);
    }

    [Fact]
    public void EosStaysLearnedWhenPadIsEos()
    {
        var tok = new WordTokenizer(padId: 2);
        var (learned, _, _, _) = Run(new AlpacaTemplate(), Single, tok);
        Assert.Equal("</s>", learned[^1]);
    }

    [Fact]
    public void TrainOnInputsLearnsEverythingButBos()
    {
        var tok = new WordTokenizer();
        var e = new ExampleTokenizer(tok, new AlpacaTemplate(), new MaskOptions(TrainOnInputs: true)).Tokenize(Single, 0);
        Assert.Equal(TokenizedExample.IgnoreIndex, e.Labels[0]);
        Assert.All(e.Labels.Skip(1), l => Assert.NotEqual(TokenizedExample.IgnoreIndex, l));
    }

    [Fact]
    public void TruncationCutsInputFirstAndKeepsTheResponse()
    {
        var tok = new WordTokenizer();
        var r = new InstructionRecord("Summarise", string.Join(" ", Enumerable.Repeat("word", 50)), "Short answer", "t");
        var full = new ExampleTokenizer(tok, PromptTemplates.Get("{instruction}\\n{input}\\n{output}")).Tokenize(r, 0);
        var cut = new ExampleTokenizer(tok, PromptTemplates.Get("{instruction}\\n{input}\\n{output}"), new MaskOptions(MaxSeqLen: 10)).Tokenize(r, 0);
        Assert.Equal(10, cut.Length);
        Assert.Equal(full.Length - 10, cut.TruncatedTokens);
        // 55 tokens: BOS, "Summarise", "\nword", 49 × " word", "\nShort", " answer", EOS → the last 45 input tokens go.
        Assert.Equal(45, cut.TruncatedTokens);
        Assert.Equal(["<s>", "Summarise", "\nword", " word", " word", " word", " word", "\nShort", " answer", "</s>"],
            cut.Ids.Select(i => tok.IdToToken(i)!));
        Assert.Equal(full.Labels.Where(l => l >= 0), cut.Labels.Where(l => l >= 0));
        Assert.Equal(5, cut.Segments.Count(s => s == (byte)Segment.Input));
        // With no input left to cut, the instruction goes next and the response survives whole.
        var tiny = new ExampleTokenizer(tok, PromptTemplates.Get("{instruction}\\n{input}\\n{output}"), new MaskOptions(MaxSeqLen: 4)).Tokenize(r, 0);
        Assert.Equal(["<s>", "\nShort", " answer", "</s>"], tiny.Ids.Select(i => tok.IdToToken(i)!));
    }

    /// <summary>A stand-in IChatTemplate (ChatML rendered by hand) with per-message provenance spans.</summary>
    private sealed class HandChatMl : IChatTemplate
    {
        public RenderedChat Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false)
        {
            var sb = new System.Text.StringBuilder();
            var spans = new List<RenderedSpan>();
            void Add(string text, int index, string? role) { spans.Add(new RenderedSpan(sb.Length, text.Length, index, role)); sb.Append(text); }
            for (int i = 0; i < messages.Count; i++)
            {
                Add("<|im_start|>" + messages[i].Role + "\n", -1, null);
                Add(messages[i].Content, i, messages[i].Role);
                Add("<|im_end|>\n", -1, null);
            }
            return new RenderedChat(sb.ToString(), spans);
        }
    }

    [Fact]
    public void TokenizerChatTemplateMasksMatchTheBuiltInChatMl()
    {
        var viaInterface = Run(new ChatTemplatePrompt(new HandChatMl()), Chat);
        var builtIn = Run(PromptTemplates.Get("chatml"), Chat);
        Assert.Equal(builtIn.Learned, viaInterface.Learned);
        Assert.Equal(builtIn.Response, viaInterface.Response);
        var single = Run(new ChatTemplatePrompt(new HandChatMl()), Single);
        Assert.Equal("\nName the capital", single.Instruction);
        Assert.Equal("\n\nof France", single.Input);
    }
}

public class PlainTextTests
{
    [Fact]
    public void PlainTextLoadsAndIsLearnedOnEveryTokenButBos()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        var path = Path.Combine(dir, "web.jsonl");
        File.WriteAllText(path, "{\"text\": \"The sky is blue today\"}\n{\"text\": \"\"}\n");
        var items = InstructTune.Data.Loading.DatasetLoader.Read(path, new InstructTune.Data.Loading.LoadOptions(InstructTune.Data.Loading.DataFormat.Text)).ToList();
        Assert.Equal(RejectReason.EmptyOutput, items[1].Rejection!.Reason);
        var tok = new WordTokenizer();
        foreach (var name in PromptTemplates.Names)
        {
            var e = new ExampleTokenizer(tok, PromptTemplates.Get(name)).Tokenize(items[0].Record!, 0);
            Assert.Equal(["<s>", "The", " sky", " is", " blue", " today", "</s>"], e.Ids.Select(i => tok.IdToToken(i)!));
            Assert.Equal(TokenizedExample.IgnoreIndex, e.Labels[0]);
            Assert.Equal(e.Ids[1..], e.Labels[1..]);
        }
    }
}
