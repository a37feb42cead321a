using InstructTune.Evaluation.IFEval.LangDetect;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Evaluation.IFEval;

/// <summary>
/// The model-free language tools IFEval's checks call: Punkt sentence splitting (NLTK English parameters),
/// nltk's word tokenizer and langdetect. Built once per evaluation.
/// </summary>
public sealed class IFEvalServices
{
    public PunktSentenceTokenizer Sentences { get; }
    public NltkWordTokenizer Words { get; }
    public LangDetector Language { get; }

    public IFEvalServices(PunktSentenceTokenizer sentences, LangDetector language)
    {
        Sentences = sentences;
        Words = new NltkWordTokenizer(sentences);
        Language = language;
    }

    /// <summary>
    /// Loads the Punkt parameters and langdetect profiles. Null folders are looked up as
    /// <c>shared/testdata/nltk-punkt-english</c> and <c>shared/testdata/langdetect-profiles</c> beside or above
    /// the current directory and the application folder, or from <c>ITUNE_PUNKT_DIR</c> / <c>ITUNE_LANGDETECT_DIR</c>.
    /// </summary>
    /// <param name="seed">langdetect seed; null reseeds every detection at random like the official checker.</param>
    public static IFEvalServices Load(string? punktDir = null, string? profilesDir = null, ulong? seed = 0)
    {
        punktDir ??= Environment.GetEnvironmentVariable("ITUNE_PUNKT_DIR") ?? FindShared("nltk-punkt-english");
        profilesDir ??= Environment.GetEnvironmentVariable("ITUNE_LANGDETECT_DIR") ?? FindShared("langdetect-profiles");
        return new IFEvalServices(PunktSentenceTokenizer.Load(punktDir),
            new LangDetector(LangDetectProfiles.Load(profilesDir), seed));
    }

    private static string FindShared(string name)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                foreach (var candidate in new[] { Path.Combine(dir.FullName, "shared", "testdata", name),
                                                  Path.Combine(dir.FullName, "..", "shared", "testdata", name) })
                    if (Directory.Exists(candidate)) return Path.GetFullPath(candidate);
        throw new DirectoryNotFoundException(
            $"'{name}' not found under shared/testdata above {Directory.GetCurrentDirectory()}; pass its folder explicitly");
    }
}
