using InstructTune.Evaluation.IFEval.LangDetect;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Evaluation.IFEval;

/// <summary>Which release of the official rules to follow where they changed.</summary>
public enum IFEvalRules
{
    /// <summary>Current google-research code: letter_frequency counts the given character, whatever it is.</summary>
    Upstream,

    /// <summary>
    /// The November 2023 release the paper's figures come from: a letter_frequency <c>letter</c> that is not one
    /// ASCII letter is replaced by <c>random.choice(string.ascii_letters)</c>, drawn once per instruction per mode.
    /// </summary>
    Release2023,
}

/// <summary>
/// The model-free language tools IFEval's checks call: Punkt sentence splitting (NLTK English parameters),
/// nltk's word tokenizer and langdetect. Load once and reuse; under <see cref="IFEvalRules.Release2023"/> the rule
/// draws restart with each evaluation, so do not run two evaluations on one instance at the same time.
/// </summary>
public sealed class IFEvalServices
{
    public PunktSentenceTokenizer Sentences { get; }
    public NltkWordTokenizer Words { get; }
    public LangDetector Language { get; }

    /// <summary>Rule release; <see cref="IFEvalRules.Upstream"/> unless set.</summary>
    public IFEvalRules Rules { get; init; } = IFEvalRules.Upstream;

    /// <summary>
    /// Draws for <see cref="IFEvalRules.Release2023"/>: CPython's generator as if <c>random.seed(RuleSeed)</c> had been
    /// called before the official run (null: a fresh random seed, as the unseeded official code).
    /// </summary>
    public ulong? RuleSeed { get; init; }

    private PythonRandom? _ruleRandom;

    /// <summary>The generator for rule draws; instructions are bound sequentially (strict pass, then loose pass).</summary>
    internal PythonRandom RuleRandom => _ruleRandom ??= NewRuleRandom();

    /// <summary>Restarts the rule draws, as a fresh official process would; called at the start of each evaluation.</summary>
    internal void ResetRuleRandom() => _ruleRandom = NewRuleRandom();

    private PythonRandom NewRuleRandom() => new(RuleSeed ?? (ulong)Random.Shared.NextInt64(long.MaxValue));

    public IFEvalServices(PunktSentenceTokenizer sentences, LangDetector language)
    {
        Sentences = sentences;
        Words = new NltkWordTokenizer(sentences);
        Language = language;
    }

    /// <summary>
    /// Loads the Punkt parameters and langdetect profiles. Null folders come from <c>ITUNE_PUNKT_DIR</c> /
    /// <c>ITUNE_LANGDETECT_DIR</c>, else <c>nltk-punkt-english</c> and <c>langdetect-profiles</c> under the shared
    /// test data (<see cref="Common.SharedTestData"/>).
    /// </summary>
    /// <param name="seed">langdetect seed; null reseeds every detection at random like the official checker.</param>
    /// <param name="rules">rule release (see <see cref="IFEvalRules"/>).</param>
    /// <param name="ruleSeed">seed of the <see cref="IFEvalRules.Release2023"/> draws; null for random.</param>
    public static IFEvalServices Load(string? punktDir = null, string? profilesDir = null, ulong? seed = 0,
        IFEvalRules rules = IFEvalRules.Upstream, ulong? ruleSeed = 0)
    {
        punktDir ??= Environment.GetEnvironmentVariable("ITUNE_PUNKT_DIR") ?? Common.SharedTestData.Path("nltk-punkt-english");
        profilesDir ??= Environment.GetEnvironmentVariable("ITUNE_LANGDETECT_DIR") ?? Common.SharedTestData.Path("langdetect-profiles");
        return new IFEvalServices(PunktSentenceTokenizer.Load(punktDir),
            new LangDetector(LangDetectProfiles.Load(profilesDir), seed)) { Rules = rules, RuleSeed = ruleSeed };
    }
}
