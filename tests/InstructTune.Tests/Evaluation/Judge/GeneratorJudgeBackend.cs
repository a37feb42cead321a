using InstructTune.Evaluation;
using InstructTune.Evaluation.Judge;

namespace InstructTune.Tests.Evaluation.Judge;

/// <summary>A test judge: any <see cref="ITextGenerator"/> (usually a lambda) answering the system and user message
/// joined into one prompt. Real local judges go through <c>local:DIR</c> and <see cref="ChatClientJudgeBackend"/>.</summary>
public sealed class GeneratorJudgeBackend(ITextGenerator generator, string name) : IJudgeBackend
{
    public string Name { get; } = name;

    public Task<string> CompleteAsync(string system, string user, CancellationToken cancellationToken) =>
        Task.Run(() => generator.Generate([system + "\n\n" + user], cancellationToken)[0], cancellationToken);
}
