// Data generation against models the big-endpoint defaults do not fit: a base model with no chat template (the
// quickstart's) gets plain completions, said in the log and the report; prompts are shortened to the model's context
// in a fixed order (fewer in-context tasks, then few-shot examples nearest the query, then the description), every
// request's prompt is then within the context; an endpoint that refuses every request stops the run at once with
// the reason (no rounds of futile retries, no output that looks like a result); min_tokens keeps a base model from
// ending at once.
using System.Text.Json;
using InstructTune.Data.Synth;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Recipes.Quickstart;
using InstructTune.Serving;
using InstructTune.Tests.Evaluation;
using InstructTune.Tests.Evaluation.Judge;
using InstructTune.Tokenizers;
using Microsoft.Extensions.AI;

namespace InstructTune.Tests.Data.Synth;

[Collection("Console")]
public class SynthSmallContextTests
{
    private static string Seeds => TestPaths.SharedTestData("datasets", "self-instruct", "seed_tasks.jsonl");

    private static readonly Lazy<string> TinyQuickstart = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("itune-synth-qs-").FullName;
        QuickstartRecipe.Run(QuickstartOptions.Tiny with { OutDir = dir }, new PlainQuickstartProgress(TextWriter.Null));
        return dir;
    });

    [Fact]
    public void Shortening_drops_list_entries_then_the_paragraphs_nearest_the_query()
    {
        var prompts = SynthPrompts.Load(null);
        (string, string)[] Classify(int _) => [("instruction", "Say whether 7 is odd.")];
        var full = prompts.RenderFitted("self_instruct_classify", 0, Classify, _ => true);
        Assert.False(full.Shortened);
        Assert.Equal(prompts.Render("self_instruct_classify", Classify(0)), full.Text);

        // The classify template: description, four examples (review, poem, prime, summary), the query. A budget that
        // leaves room for exactly two examples must drop the two nearest the query (summary, prime), keep the rest.
        var paragraphs = full.Text.Split("\n\n");
        Assert.Equal(6, paragraphs.Length);
        int budget = full.Text.Length - paragraphs[4].Length - paragraphs[3].Length - 4;
        var two = prompts.RenderFitted("self_instruct_classify", 0, Classify, t => t.Length <= budget);
        Assert.Equal(2, two.ParagraphsDropped);
        Assert.Equal(string.Join("\n\n", paragraphs[0], paragraphs[1], paragraphs[2], paragraphs[5]), two.Text);
        // Nothing but the query fits: the description goes last; still too long: the shortest, marked as not fitting.
        var query = prompts.RenderFitted("self_instruct_classify", 0, Classify, t => t.Length <= paragraphs[5].Length);
        Assert.Equal((paragraphs[5], 5, true), (query.Text, query.ParagraphsDropped, query.Fits));
        var none = prompts.RenderFitted("self_instruct_classify", 0, Classify, _ => false);
        Assert.Equal((paragraphs[5], false), (none.Text, none.Fits));

        // The task list: fewer in-context tasks first (with the description), then without the description, all again.
        var tasks = new[] { "First task here.", "Second task here.", "Third task here.", "Fourth task here." };
        (string, string)[] List(int k) => [("tasks", string.Join("\n", tasks.Take(k).Select((t, i) => $"{i + 1}. {t}"))), ("next", (k + 1).ToString())];
        var withTwo = prompts.RenderFitted("self_instruct_tasks", 4, List, t => !t.Contains("Third", StringComparison.Ordinal));
        Assert.Equal((2, 0), (withTwo.Items, withTwo.ParagraphsDropped));
        Assert.EndsWith("1. First task here.\n2. Second task here.\n3.", withTwo.Text);
        int header = prompts.Render("self_instruct_tasks", List(0)).Split("\n\n")[0].Length;
        var bare = prompts.RenderFitted("self_instruct_tasks", 4, List, t => t.Length < header);
        Assert.Equal((4, 1), (bare.Items, bare.ParagraphsDropped));
        Assert.Equal(string.Join("\n", tasks.Select((t, i) => $"{i + 1}. {t}")) + "\n5.", bare.Text);
    }

    [Fact]
    public void A_local_base_without_chat_template_gets_plain_completions_and_its_prompts_fit_its_context()
    {
        var qs = TinyQuickstart.Value;
        var baseDir = Path.Combine(qs, "base");
        // The quickstart's adapter records the prompt format it was tuned with; its base records none.
        var adapterRecord = InstructTune.Data.Templating.PromptFormatFile.TryRead(Path.Combine(qs, "adapter"));
        Assert.Equal(QuickstartRecipe.PromptFormat, adapterRecord?.Template);
        Assert.Null(InstructTune.Data.Templating.PromptFormatFile.TryRead(baseDir));

        // Without the fallback the base refuses chat requests; with it, a lone user message is the prompt text itself,
        // encoded with the tokenizer's special tokens (BOS), as `itune generate --prompt` does.
        var tokenizer = TokenizerLoader.Load(baseDir);
        using (var strict = (LocalChatClient)ChatClients.Create("local:" + baseDir))
            Assert.Throws<ServeRequestException>(() => strict.CountPromptTokens([new ChatMessage(ChatRole.User, "the word cat")]));
        using (var plain = (LocalChatClient)ChatClients.Create("local:" + baseDir, completionFallback: true))
        {
            Assert.Equal(tokenizer.Encode("the word cat", addSpecialTokens: true).Ids.Length,
                plain.CountPromptTokens([new ChatMessage(ChatRole.User, "the word cat")]));
            Assert.StartsWith("plain completion", plain.DescribeFormat());
        }
        // With the adapter, its recorded format makes the message the instruction of the prompt the quickstart tunes on
        // (its template rendered with an empty answer).
        var trained = new InstructTune.Data.Templating.FormatStringTemplate(QuickstartRecipe.PromptFormat)
            .Render(new InstructTune.Data.Records.InstructionRecord("Say cat", "", "", "t")).Text;
        using (var tuned = (LocalChatClient)ChatClients.Create($"local:{baseDir}+{Path.Combine(qs, "adapter")}"))
            Assert.Equal(tokenizer.Encode(trained, addSpecialTokens: true).Ids.Length,
                tuned.CountPromptTokens([new ChatMessage(ChatRole.User, "Say cat")]));

        int context = QuickstartRecipe.ModelConfig(QuickstartOptions.Tiny, tokenizer).MaxPositionEmbeddings;
        var outDir = Directory.CreateTempSubdirectory("itune-synth-small-").FullName;
        try
        {
            var (rc, stdout, stderr) = CliCapture.Run("synth", "self-instruct", "--seeds", Seeds, "--out", outDir,
                "--endpoint", "local:" + baseDir, "--target", "4", "synth.max_rounds=2", "synth.min_tokens=4",
                "synth.drop_truncated=false", "synth.lenient_instances=true", "synth.reject_alignment=0", "synth.flag_alignment=0");
            Assert.DoesNotContain("   at ", stderr);
            Assert.Contains("prompt format plain completion", stderr);
            Assert.Contains($"context {context} tokens", stderr);
            Assert.Contains($"the self_instruct_tasks prompt is shortened to fit the model's context of {context} tokens", stderr);
            var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json"))).RootElement;
            Assert.StartsWith("plain completion", report.GetProperty("prompt_format").GetString());
            var funnel = report.GetProperty("funnel").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
            Assert.Equal(8, funnel["requests"]);
            Assert.True(funnel["prompts_shortened"] >= 8, report.GetProperty("funnel").GetRawText());
            // Every answered request's prompt left room in the context; a failed one says why.
            var journal = File.ReadAllLines(Path.Combine(outDir, "journal.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.NotEmpty(journal);
            foreach (var e in journal)
                if (e.GetProperty("error").ValueKind == JsonValueKind.Null) Assert.InRange(e.GetProperty("prompt_tokens").GetInt64(), 1, context - 1);
                else Assert.Contains($"this model's context is {context} tokens", e.GetProperty("error").GetString());
            // min_tokens: no generation request with room for 4 answer tokens ended before them.
            Assert.All(journal.Where(e => e.GetProperty("stage").GetString() == "instructions" && e.GetProperty("error").ValueKind == JsonValueKind.Null
                                          && e.GetProperty("prompt_tokens").GetInt64() + 4 <= context),
                e => Assert.True(e.GetProperty("completion_tokens").GetInt64() >= 4, e.GetRawText()));
            // Nothing accepted, or a failed request: exit 1 with the reason, never a plain success.
            bool nothing = report.GetProperty("accepted").GetInt32() == 0 && report.GetProperty("flagged").GetInt32() == 0;
            bool failed = report.GetProperty("requests").GetProperty("failed").GetInt64() > 0;
            Assert.Equal(nothing || failed ? 1 : 0, rc);
            if (nothing) Assert.Contains("nothing was accepted or flagged", stderr);
        }
        finally { Directory.Delete(outDir, true); }
    }

    [Fact]
    public void An_endpoint_refusing_every_request_stops_the_run_after_one_round()
    {
        using var server = new FakeOpenAiServer();
        server.Script = _ => new ScriptedReply(null, Status: 400);
        var dir = Directory.CreateTempSubdirectory("itune-synth-400-").FullName;
        try
        {
            var (rc, stdout, stderr) = CliCapture.Run("synth", "self-instruct", "--seeds", Seeds, "--out", dir,
                "--endpoint", server.BaseUrl, "--model", "m", "synth.api_key_env=", "synth.max_failed_rounds=5", "synth.base_delay_s=0.01");
            Assert.Equal(2, rc);
            Assert.Contains("all 4 instructions request(s) failed with an error a retry cannot fix", stderr);
            Assert.Contains("400", stderr);
            Assert.DoesNotContain("   at ", stderr);
            Assert.Equal(4, server.Total);   // one round, each request once: a 400 is not retried, and no second round
            Assert.False(File.Exists(Path.Combine(dir, "data.jsonl")));
            var journal = File.ReadAllLines(Path.Combine(dir, "journal.jsonl"));
            Assert.Equal(4, journal.Length);
            Assert.All(journal, l => Assert.Contains("400", JsonDocument.Parse(l).RootElement.GetProperty("error").GetString()));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Min_tokens_is_refused_for_a_remote_endpoint()
    {
        var dir = Directory.CreateTempSubdirectory("itune-synth-min-").FullName;
        try
        {
            var (rc, _, stderr) = CliCapture.Run("synth", "self-instruct", "--seeds", Seeds, "--out", dir,
                "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "synth.api_key_env=", "synth.min_tokens=3");
            Assert.Equal(2, rc);
            Assert.Contains("synth.min_tokens", stderr);
        }
        finally { Directory.Delete(dir, true); }
    }
}
