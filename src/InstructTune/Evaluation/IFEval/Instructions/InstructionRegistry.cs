namespace InstructTune.Evaluation.IFEval.Instructions;

/// <summary>
/// The 25 instruction ids of IFEval's <c>instructions_registry.INSTRUCTION_DICT</c>, each mapped to its checker.
/// (The registry's commented-out ids — key_sentences, rephrase_paragraph, rephrase, constrained_start — are
/// not part of the benchmark and are unknown here too.)
/// </summary>
public static class InstructionRegistry
{
    private static readonly Dictionary<string, Func<InstructionArgs, IFEvalServices, IInstruction>> Factories = new()
    {
        ["keywords:existence"] = (a, _) => new KeywordExistence(a),
        ["keywords:frequency"] = (a, _) => new KeywordFrequency(a),
        ["keywords:forbidden_words"] = (a, _) => new ForbiddenWords(a),
        ["keywords:letter_frequency"] = (a, s) => new LetterFrequency(a, s),
        ["language:response_language"] = (a, s) => new ResponseLanguage(a, s),
        ["length_constraints:number_sentences"] = (a, s) => new NumberOfSentences(a, s),
        ["length_constraints:number_paragraphs"] = (a, _) => new NumberOfParagraphs(a),
        ["length_constraints:number_words"] = (a, _) => new NumberOfWords(a),
        ["length_constraints:nth_paragraph_first_word"] = (a, _) => new NthParagraphFirstWord(a),
        ["detectable_content:number_placeholders"] = (a, _) => new Placeholders(a),
        ["detectable_content:postscript"] = (a, _) => new Postscript(a),
        ["detectable_format:number_bullet_lists"] = (a, _) => new BulletLists(a),
        ["detectable_format:constrained_response"] = (_, _) => new ConstrainedResponse(),
        ["detectable_format:number_highlighted_sections"] = (a, _) => new HighlightedSections(a),
        ["detectable_format:multiple_sections"] = (a, _) => new MultipleSections(a),
        ["detectable_format:json_format"] = (_, _) => new JsonFormat(),
        ["detectable_format:title"] = (_, _) => new Title(),
        ["combination:two_responses"] = (_, _) => new TwoResponses(),
        ["combination:repeat_prompt"] = (a, _) => new RepeatPrompt(a),
        ["startend:end_checker"] = (a, _) => new EndChecker(a),
        ["change_case:capital_word_frequency"] = (a, s) => new CapitalWordFrequency(a, s),
        ["change_case:english_capital"] = (_, s) => new EnglishCapital(s),
        ["change_case:english_lowercase"] = (_, s) => new EnglishLowercase(s),
        ["punctuation:no_comma"] = (_, _) => new NoComma(),
        ["startend:quotation"] = (_, _) => new Quotation(),
    };

    /// <summary>All registered ids, sorted.</summary>
    public static IReadOnlyList<string> Ids { get; } = Factories.Keys.Order(StringComparer.Ordinal).ToList();

    public static bool IsKnown(string id) => Factories.ContainsKey(id);

    /// <summary>Binds an instruction; unknown ids and bad kwargs throw <see cref="InstructionArgumentException"/>.</summary>
    public static IInstruction Create(string id, InstructionArgs args, IFEvalServices services) =>
        Factories.TryGetValue(id, out var make)
            ? make(args, services)
            : throw new InstructionArgumentException($"{args.Where}: unknown instruction id '{id}'");
}
