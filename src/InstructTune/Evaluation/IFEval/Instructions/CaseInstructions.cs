using InstructTune.Evaluation.IFEval.LangDetect;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Evaluation.IFEval.Instructions;

/// <summary>language:response_language — langdetect's answer equals the language code; undetectable text passes.</summary>
internal sealed class ResponseLanguage(InstructionArgs a, IFEvalServices services) : IInstruction
{
    private readonly string _language = a.Str("language");
    public bool CheckFollowing(string response) => LanguageIs(services, response, _language);

    /// <summary>langdetect.detect(text) == lang, counting "no features" as followed (as the official checks do).</summary>
    internal static bool LanguageIs(IFEvalServices services, string text, string lang)
    {
        try
        {
            return services.Language.Detect(text) == lang;
        }
        catch (LangDetectException)
        {
            return true;
        }
    }
}

/// <summary>change_case:english_capital — str.isupper() and detected as English.</summary>
internal sealed class EnglishCapital(IFEvalServices services) : IInstruction
{
    public bool CheckFollowing(string response) =>
        PyUnicode.IsUpper(response) && ResponseLanguage.LanguageIs(services, response, "en");
}

/// <summary>change_case:english_lowercase — str.islower() and detected as English.</summary>
internal sealed class EnglishLowercase(IFEvalServices services) : IInstruction
{
    public bool CheckFollowing(string response) =>
        PyUnicode.IsLower(response) && ResponseLanguage.LanguageIs(services, response, "en");
}

/// <summary>change_case:capital_word_frequency — nltk.word_tokenize tokens that are str.isupper().</summary>
internal sealed class CapitalWordFrequency(InstructionArgs a, IFEvalServices services) : IInstruction
{
    private readonly long _frequency = a.Int("capital_frequency");
    private readonly Relation _relation = a.Relation("capital_relation");
    public bool CheckFollowing(string response) =>
        _relation.Holds(services.Words.WordTokenize(response).Count(PyUnicode.IsUpper), _frequency);
}

/// <summary>punctuation:no_comma — no ',' anywhere.</summary>
internal sealed class NoComma : IInstruction
{
    public bool CheckFollowing(string response) => !response.Contains(',');
}
