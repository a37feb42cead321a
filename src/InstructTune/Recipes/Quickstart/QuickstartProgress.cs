namespace InstructTune.Recipes.Quickstart;

/// <summary>What the quickstart tells its caller while it runs (the CLI draws it with Spectre.Console or plain lines).</summary>
public interface IQuickstartProgress
{
    /// <summary>A stage starts or a result is known (one line of text).</summary>
    void Say(string line);

    /// <summary>One optimizer step of <paramref name="phase"/> ("pretrain" or "tune") finished.</summary>
    void Step(string phase, int step, int total, double loss);
}

/// <summary>Plain lines for redirected output and tests: every message, and every tenth of each training phase.</summary>
public sealed class PlainQuickstartProgress(TextWriter writer) : IQuickstartProgress
{
    public void Say(string line) => writer.WriteLine(line);

    public void Step(string phase, int step, int total, double loss)
    {
        if (step == total || step % Math.Max(1, total / 10) == 0)
            writer.WriteLine($"  {phase} step {step}/{total}  loss {loss:F4}");
    }
}
