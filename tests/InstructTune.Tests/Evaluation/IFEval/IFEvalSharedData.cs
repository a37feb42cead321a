using InstructTune.Evaluation.IFEval;

namespace InstructTune.Tests.Evaluation.IFEval;

/// <summary>Shared IFEval services (Punkt parameters and langdetect profiles from ../shared/testdata), loaded once.</summary>
internal static class IFEvalSharedData
{
    private static readonly Lazy<IFEvalServices> Lazy = new(() => IFEvalServices.Load(
        TestPaths.SharedTestData("nltk-punkt-english"), TestPaths.SharedTestData("langdetect-profiles"), seed: 0));

    public static IFEvalServices Services => Lazy.Value;

    public static string Input => TestPaths.SharedTestData("ifeval", "input_data.jsonl");

    public static string Responses(string set) => TestPaths.SharedTestData("ifeval", $"input_response_data_{set}.jsonl");

    public const string Gpt4 = "gpt4_20231107_145030";
}
