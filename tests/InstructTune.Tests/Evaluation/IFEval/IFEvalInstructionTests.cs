using System.Text.Json;
using InstructTune.Evaluation.IFEval;
using InstructTune.Evaluation.IFEval.Instructions;

namespace InstructTune.Tests.Evaluation.IFEval;

/// <summary>Each of the 25 instruction types on hand-worked responses, one that follows and one that does not
/// (or the boundary case of the official rule).</summary>
public class IFEvalInstructionTests
{
    private static bool Check(string id, string kwargs, string response) =>
        InstructionRegistry.Create(id, new InstructionArgs(JsonDocument.Parse(kwargs).RootElement.Clone(), "test"),
            IFEvalSharedData.Services).CheckFollowing(response);

    public static TheoryData<string, string, string, bool> Cases => new()
    {
        // keywords
        { "keywords:existence", """{"keywords":["Apple","pie"]}""", "I like APPLE pies.", true },
        { "keywords:existence", """{"keywords":["apple","pie"]}""", "I like apples.", false },
        { "keywords:frequency", """{"keyword":"cat","frequency":3,"relation":"at least"}""", "cat Cat CATalog", true },
        { "keywords:frequency", """{"keyword":"cat","frequency":3,"relation":"less than"}""", "cat Cat CATalog", false },
        { "keywords:forbidden_words", """{"forbidden_words":["rock"]}""", "Rocky music rocks.", true },
        { "keywords:forbidden_words", """{"forbidden_words":["rock"]}""", "We ROCK!", false },
        { "keywords:letter_frequency", """{"letter":"A","let_frequency":3,"let_relation":"at least"}""", "a banana", true },
        { "keywords:letter_frequency", """{"letter":"z","let_frequency":1,"let_relation":"less than"}""", "Zoo", false },
        // language (langdetect, seed 0)
        { "language:response_language", """{"language":"de"}""", "Das ist ein Satz in deutscher Sprache über das Wetter.", true },
        { "language:response_language", """{"language":"de"}""", "This sentence is written in English about the weather.", false },
        { "language:response_language", """{"language":"de"}""", "12345 !!!", true }, // no features: counted as followed
        // length constraints
        { "length_constraints:number_sentences", """{"num_sentences":2,"relation":"at least"}""", "Mr. Smith came. He left.", true },
        { "length_constraints:number_sentences", """{"num_sentences":2,"relation":"less than"}""", "Mr. Smith came. He left.", false },
        { "length_constraints:number_paragraphs", """{"num_paragraphs":2}""", "First.\n***\nSecond.", true },
        { "length_constraints:number_paragraphs", """{"num_paragraphs":2}""", "First.\n***\n***\nSecond.", false }, // empty inner paragraph
        { "length_constraints:number_paragraphs", """{"num_paragraphs":1}""", "***\nOnly one.\n***", true }, // empty ends not counted
        { "length_constraints:number_words", """{"num_words":4,"relation":"at least"}""", "it's a-ok", true },
        { "length_constraints:number_words", """{"num_words":4,"relation":"less than"}""", "it's a-ok", false },
        { "length_constraints:nth_paragraph_first_word", """{"num_paragraphs":2,"nth_paragraph":2,"first_word":"Then"}""", "Intro.\n\n\"Then, we go.", true },
        { "length_constraints:nth_paragraph_first_word", """{"num_paragraphs":2,"nth_paragraph":2,"first_word":"then"}""", "Intro.\n\nNow we go.", false },
        // content
        { "detectable_content:number_placeholders", """{"num_placeholders":2}""", "Dear [name], at [address].", true },
        { "detectable_content:number_placeholders", """{"num_placeholders":2}""", "Dear [name\n], at address.", false },
        { "detectable_content:postscript", """{"postscript_marker":"P.S."}""", "Body.\n\np. s. remember", true },
        { "detectable_content:postscript", """{"postscript_marker":"P.P.S"}""", "Body.\nPS remember", false },
        // format
        { "detectable_format:number_bullet_lists", """{"num_bullets":2}""", "* one\n- two\n**bold** not a bullet", true },
        { "detectable_format:number_bullet_lists", """{"num_bullets":2}""", "* one\n* two\n* three", false },
        { "detectable_format:constrained_response", "{}", "  Well... My answer is maybe.  ", true },
        { "detectable_format:constrained_response", "{}", "my answer is yes.", false },
        { "detectable_format:number_highlighted_sections", """{"num_highlights":2}""", "**Bold** and *it*", true },
        { "detectable_format:number_highlighted_sections", """{"num_highlights":2}""", "**Bold** alone counts once; * * and ** ** are blank", false },
        { "detectable_format:multiple_sections", """{"section_spliter":"SECTION","num_sections":2}""", "SECTION 1\nA\nSECTION 2\nB", true },
        { "detectable_format:multiple_sections", """{"section_spliter":"SECTION","num_sections":2}""", "SECTION 1\nA\nSection 2\nB", false },
        { "detectable_format:json_format", "{}", "```json\n{\"a\": [1, 2]}\n```", true },
        { "detectable_format:json_format", "{}", "```json\n{\"a\": [1, 2],}\n```", false },
        { "detectable_format:title", "{}", "<<My Title>>\nText", true },
        { "detectable_format:title", "{}", "<< >> and <<broken\ntitle>>", false },
        // combination
        { "combination:two_responses", "{}", "Answer one.\n******\nAnswer two.", true },
        { "combination:two_responses", "{}", "Same.\n******\nSame.", false },
        { "combination:repeat_prompt", """{"prompt_to_repeat":"Write a poem."}""", "  write a POEM. Roses are red.", true },
        { "combination:repeat_prompt", """{"prompt_to_repeat":"Write a poem."}""", "Sure! Write a poem.", false },
        // start/end
        { "startend:end_checker", """{"end_phrase":"Any other questions?"}""", "Done. any other questions?\"  ", true },
        { "startend:end_checker", """{"end_phrase":"Any other questions?"}""", "Any other questions? Bye.", false },
        { "startend:quotation", "{}", "  \"Wrapped.\"\n", true },
        { "startend:quotation", "{}", "\"", false },
        // case
        { "change_case:capital_word_frequency", """{"capital_frequency":3,"capital_relation":"at least"}""", "I DON'T KNOW.", true }, // I, DO, N'T, KNOW
        { "change_case:capital_word_frequency", """{"capital_frequency":2,"capital_relation":"less than"}""", "USA and UK.", false },
        { "change_case:english_capital", "{}", "THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHER TODAY.", true },
        { "change_case:english_capital", "{}", "THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHEr TODAY.", false },
        { "change_case:english_lowercase", "{}", "this is an english sentence about the weather today.", true },
        { "change_case:english_lowercase", "{}", "das ist ein satz in deutscher sprache über das wetter.", false },
        // punctuation
        { "punctuation:no_comma", "{}", "No commas here.", true },
        { "punctuation:no_comma", "{}", "One, two.", false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Instruction_FollowsOfficialRule(string id, string kwargs, string response, bool expected) =>
        Assert.Equal(expected, Check(id, kwargs, response));

    [Fact]
    public void Registry_HasThe25OfficialIds()
    {
        Assert.Equal(25, InstructionRegistry.Ids.Count);
        Assert.Equal(25, Cases.Select(c => (string)c[0]).Distinct().Count());
    }

    [Fact]
    public void BadKwargs_AreNamed()
    {
        var e = Assert.Throws<InstructionArgumentException>(() => Check("keywords:frequency", """{"keyword":"x","frequency":2,"relation":"more than"}""", ""));
        Assert.Contains("relation", e.Message);
        e = Assert.Throws<InstructionArgumentException>(() => Check("length_constraints:number_words", """{"relation":"at least"}""", ""));
        Assert.Contains("num_words", e.Message);
        e = Assert.Throws<InstructionArgumentException>(() => Check("keywords:nonsense", "{}", ""));
        Assert.Contains("unknown instruction id 'keywords:nonsense'", e.Message);
    }

    [Fact]
    public void LooseVariants_AreEvaluationLibs()
    {
        var v = IFEvalEvaluator.LooseVariants("Sure!\n*Body* text\nBye");
        Assert.Equal(["Sure!\n*Body* text\nBye", "Sure!\nBody text\nBye", "*Body* text\nBye", "Sure!\n*Body* text",
            "*Body* text", "Body text\nBye", "Sure!\nBody text", "Body text"], v);
        Assert.Equal(["one", "one", "", "", "", "", "", ""], IFEvalEvaluator.LooseVariants("one"));
    }
}
