namespace InstructTune.Engine.Tests;

/// <summary>Locates the repository root and the committed fixtures.</summary>
public static class TestPaths
{
    /// <summary>The folder holding InstructTune.sln, found by walking up from the test binary.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Committed golden fixtures: tests/fixtures/&lt;area&gt;/….</summary>
    public static string Fixtures(params string[] parts) =>
        Path.Combine([RepoRoot, "tests", "fixtures", .. parts]);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "InstructTune.sln"))) return dir.FullName;
        throw new InvalidOperationException("InstructTune.sln not found above " + AppContext.BaseDirectory);
    }
}
