// Finds the shared reference data (../shared/testdata beside the checkout: real tokenizers, datasets, IFEval
// data, Punkt parameters, langdetect profiles). A clone made elsewhere (CI clones into a temporary folder) has
// no shared/ beside it, so the clone's local origin is searched as well.
namespace InstructTune.Common;

public static class SharedTestData
{
    /// <summary>Environment variable naming the testdata folder outright.</summary>
    public const string Variable = "INSTRUCTTUNE_SHARED_TESTDATA";

    private static readonly Lazy<string?> Found = new(Locate);

    /// <summary>The shared/testdata folder, or null when none is found.</summary>
    public static string? Root => Found.Value;

    /// <summary>A path under shared/testdata; throws DirectoryNotFoundException naming where it looked when absent.</summary>
    public static string Path(params string[] parts) =>
        System.IO.Path.Combine([Root ?? throw new DirectoryNotFoundException(
            $"shared/testdata not found above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}, nor beside the checkout's origin; set {Variable}"), .. parts]);

    private static string? Locate()
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } explicitPath)
            return Directory.Exists(explicitPath) ? System.IO.Path.GetFullPath(explicitPath) : null;
        return Locate([Directory.GetCurrentDirectory(), AppContext.BaseDirectory]);
    }

    /// <summary>shared/testdata in or above one of <paramref name="startDirs"/>, or in or above the local origin
    /// of a git checkout met on the way.</summary>
    internal static string? Locate(IEnumerable<string> startDirs)
    {
        var starts = startDirs.ToList();
        for (int i = 0; i < starts.Count; i++)
            for (var dir = new DirectoryInfo(starts[i]); dir != null; dir = dir.Parent)
            {
                string candidate = System.IO.Path.Combine(dir.FullName, "shared", "testdata");
                if (Directory.Exists(candidate)) return candidate;
                if (LocalOrigin(dir.FullName) is { } origin && !starts.Contains(origin)) starts.Add(origin);
            }
        return null;
    }

    /// <summary>The folder a git checkout at <paramref name="dir"/> was cloned from, when that is a local path.</summary>
    private static string? LocalOrigin(string dir)
    {
        string config = System.IO.Path.Combine(dir, ".git", "config");
        if (!File.Exists(config)) return null;
        bool inOrigin = false;
        foreach (var raw in File.ReadLines(config))
        {
            string line = raw.Trim();
            if (line.StartsWith('[')) inOrigin = line == "[remote \"origin\"]";
            else if (inOrigin && line.StartsWith("url", StringComparison.Ordinal) && line.IndexOf('=') is int eq and > 0)
            {
                string url = line[(eq + 1)..].Trim();
                if (url.StartsWith("file://", StringComparison.Ordinal)) url = url["file://".Length..];
                if (!System.IO.Path.IsPathRooted(url)) url = System.IO.Path.Combine(dir, url);
                return Directory.Exists(url) ? System.IO.Path.GetFullPath(url) : null;
            }
        }
        return null;
    }
}
