namespace InstructTune.Templates.Jinja;

/// <summary>
/// Sandbox limits that stop runaway templates with a clear error instead of hanging or exhausting memory.
/// The defaults are far above what a chat template needs (a long conversation renders in a few thousand
/// iterations and well under a megabyte).
/// </summary>
public sealed record RenderLimits
{
    /// <summary>Total for-loop iterations in one render, summed over all loops.</summary>
    public int MaxLoopIterations { get; init; } = 1_000_000;
    /// <summary>Characters of rendered output, and of any single string or list built while rendering.</summary>
    public int MaxOutputLength { get; init; } = 16_000_000;
    /// <summary>Nested macro calls (recursion).</summary>
    public int MaxCallDepth { get; init; } = 100;
    /// <summary>Total calls of macros and callables in one render (a macro that calls itself twice per level).</summary>
    public long MaxCalls { get; init; } = 250_000;

    public static RenderLimits Default { get; } = new();
}
