namespace InstructTune.Tests;

/// <summary>Locates the repository root, committed fixtures and the shared test data beside the checkout.</summary>
public static class TestPaths
{
    /// <summary>The folder holding InstructTune.sln, found by walking up from the test binary.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Committed golden fixtures: tests/fixtures/&lt;area&gt;/….</summary>
    public static string Fixtures(params string[] parts) =>
        Path.Combine([RepoRoot, "tests", "fixtures", .. parts]);

    /// <summary>Real reference data in shared/testdata (never copied into the repo), found by
    /// <see cref="global::InstructTune.Common.SharedTestData"/> (beside the checkout or beside the clone's origin); when it is
    /// nowhere, the path beside the checkout, which does not exist.</summary>
    public static string SharedTestData(params string[] parts) =>
        Path.Combine([global::InstructTune.Common.SharedTestData.Root ?? Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "testdata")), .. parts]);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "InstructTune.sln"))) return dir.FullName;
        throw new InvalidOperationException("InstructTune.sln not found above " + AppContext.BaseDirectory);
    }
}
