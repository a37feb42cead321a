namespace InstructTune.Evaluation;

/// <summary>
/// The one thing model-driven evaluation needs from a model: prompts in, completions out (same order, same count).
/// The generation engineer's model implements it; tests use deterministic fakes. Implementations decide decoding;
/// evaluation assumes nothing beyond "one completion per prompt".
/// </summary>
public interface ITextGenerator
{
    IReadOnlyList<string> Generate(IReadOnlyList<string> prompts, CancellationToken cancellationToken = default);
}

/// <summary>Wraps a function as a generator (tests, and local judges built from a lambda).</summary>
public sealed class DelegateTextGenerator(Func<string, string> complete) : ITextGenerator
{
    public IReadOnlyList<string> Generate(IReadOnlyList<string> prompts, CancellationToken cancellationToken = default) =>
        prompts.Select(complete).ToList();
}
