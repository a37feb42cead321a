using System.CommandLine;

namespace InstructTune.Cli.Commands;

/// <summary>Every top-level command of itune, one line per area; keep the list sorted by area.</summary>
public static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return ConfigCommands.Create();
        foreach (var c in DataCommands.Create()) yield return c;
        yield return EvalCommands.Create();
        yield return VersionCommand.Create();
        foreach (var c in TrainCommands.Create()) yield return c;
        foreach (var c in TokenizerCommands.All()) yield return c;
        yield return ChatTemplateCommands.Create();
        foreach (var c in ModelCommands.Create()) yield return c;
        yield return QuickstartCommand.Create();
        yield return ServeCommands.Create();
        yield return ExportCommands.Create();
        yield return SynthCommands.Create();
        yield return AblateCommand.Create();
        yield return ContinualCommand.Create();
    }
}
