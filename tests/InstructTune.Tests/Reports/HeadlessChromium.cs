using System.Diagnostics;

namespace InstructTune.Tests.Reports;

/// <summary>Runs Debian's headless chromium on a local file: takes a screenshot and returns the console lines the
/// page produced (chromium logs page console output and uncaught exceptions as ":CONSOLE" lines on stderr).</summary>
public static class HeadlessChromium
{
    public static string? Executable { get; } =
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    public sealed record Result(int ExitCode, string Stderr, IReadOnlyList<string> ConsoleLines);

    public static Result Screenshot(string htmlPath, string pngPath, TimeSpan timeout)
    {
        var profile = Directory.CreateTempSubdirectory("itune-chromium-");
        try
        {
            var psi = new ProcessStartInfo(Executable ?? throw new InvalidOperationException("chromium not installed"))
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            foreach (var a in new[]
                     {
                         "--headless", "--no-sandbox", "--disable-gpu", $"--screenshot={pngPath}", "--window-size=1200,1600",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                         $"--user-data-dir={profile.FullName}", "--enable-logging=stderr", "--v=0",
                         new Uri(Path.GetFullPath(htmlPath)).AbsoluteUri,
                     })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"chromium did not finish within {timeout}");
            }
            var err = stderr.Result + stdout.Result;
            var console = err.Split('\n').Where(l => l.Contains(":CONSOLE", StringComparison.Ordinal)).ToList();
            return new Result(p.ExitCode, err, console);
        }
        finally { profile.Delete(recursive: true); }
    }

    /// <summary>Width and height from a PNG's IHDR chunk; throws if the bytes are not a PNG.</summary>
    public static (int Width, int Height) PngSize(string path)
    {
        var b = File.ReadAllBytes(path);
        byte[] sig = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
        if (b.Length < 24 || !b.AsSpan(0, 8).SequenceEqual(sig)) throw new InvalidDataException($"{path} is not a PNG");
        return (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(16)),
            System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(20)));
    }
}

/// <summary>A fact that is skipped, with the reason, only when no chromium binary is installed.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (HeadlessChromium.Executable == null)
            Skip = "chromium is not installed (apt-get install -y chromium); the headless screenshot test needs it";
    }
}
