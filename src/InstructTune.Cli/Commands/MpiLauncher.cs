// itune train --launcher mpi --ranks N [--hostfile F]: re-executes the same command under mpirun, so a user
// need not spell the mpirun line; the ranks then run `itune train …` data-parallel (Distributed/).
using System.Diagnostics;

namespace InstructTune.Cli.Commands;

public static class MpiLauncher
{
    /// <summary>Options that belong to the launcher and are not passed on to the ranks.</summary>
    private static readonly string[] OwnOptions = ["--launcher", "--ranks", "--hostfile"];

    /// <summary>Runs mpirun with this process's own command line minus the launcher options; returns its exit code.</summary>
    public static int Relaunch(string launcher, int ranks, string? hostfile, IReadOnlyList<string> commandLine)
    {
        if (launcher != "mpi") { Console.Error.WriteLine($"error: --launcher {launcher}: the only launcher is 'mpi'"); return 2; }
        if (ranks < 1) { Console.Error.WriteLine("error: --ranks must be at least 1"); return 2; }
        if (hostfile != null && !File.Exists(hostfile)) { Console.Error.WriteLine($"error: --hostfile {hostfile}: no such file"); return 2; }
        var mpirun = FindOnPath("mpirun");
        if (mpirun == null) { Console.Error.WriteLine("error: --launcher mpi: mpirun is not on PATH (install Open MPI: apt-get install openmpi-bin)"); return 2; }

        var psi = new ProcessStartInfo(mpirun) { UseShellExecute = false };
        psi.ArgumentList.Add("-np"); psi.ArgumentList.Add(ranks.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (hostfile != null) { psi.ArgumentList.Add("--hostfile"); psi.ArgumentList.Add(hostfile); }
        else if (ranks > Environment.ProcessorCount) psi.ArgumentList.Add("--oversubscribe");
        // Each rank sizes its own thread pool (distributed.threads_per_rank); mpirun's default core binding of
        // small jobs would squeeze a rank's threads onto one core.
        psi.ArgumentList.Add("--bind-to"); psi.ArgumentList.Add("none");
        if (Environment.UserName == "root") psi.ArgumentList.Add("--allow-run-as-root");
        // The same program: the apphost, or `dotnet itune.dll`.
        var self = Environment.ProcessPath!;
        psi.ArgumentList.Add(self);
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(MpiLauncher).Assembly.Location);
        for (int i = 0; i < commandLine.Count; i++)
        {
            var a = commandLine[i];
            var name = a.Split('=', 2)[0];
            if (OwnOptions.Contains(name)) { if (!a.Contains('=')) i++; continue; }
            psi.ArgumentList.Add(a);
        }
        Console.Error.WriteLine("launching: " + string.Join(' ', psi.ArgumentList.Prepend(mpirun)));
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
