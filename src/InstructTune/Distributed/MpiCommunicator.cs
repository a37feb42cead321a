using System.Diagnostics;
using System.Runtime.InteropServices;

namespace InstructTune.Distributed;

/// <summary>
/// MPI_COMM_WORLD of a job started by mpirun, through <see cref="MpiNative"/>. Every collective runs under a
/// watchdog: one that has not returned after <see cref="Timeout"/> (distributed.collective_timeout_s) means a
/// rank has died or hangs, so the watchdog prints which rank waited on what and calls MPI_Abort, which ends every
/// rank (mpirun also ends the job by itself when a rank exits non-zero or is killed; the watchdog covers a rank
/// that stalls without exiting). A SIGTERM from mpirun is reported on stderr before the process ends, so each
/// rank says why it stopped.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private readonly Thread _watchdog;
    private readonly PosixSignalRegistration? _sigterm;
    private readonly bool _threadMultiple;
    private long _opStart;          // Stopwatch timestamp of the collective in flight; 0 when none
    private string _op = "";
    private long _collectiveTicks;
    private volatile bool _closed;

    public int Rank { get; }
    public int Size { get; }
    public TimeSpan Timeout { get; }
    public double CollectiveSeconds => (double)Interlocked.Read(ref _collectiveTicks) / Stopwatch.Frequency;

    private MpiCommunicator(int rank, int size, TimeSpan timeout, bool threadMultiple)
    {
        Rank = rank; Size = size; Timeout = timeout; _threadMultiple = threadMultiple;
        _watchdog = new Thread(Watch) { IsBackground = true, Name = "mpi-watchdog" };
        _watchdog.Start();
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
            Console.Error.WriteLine($"rank {Rank}/{Size}: stopped by mpirun (another rank failed or the job was cancelled)"));
    }

    /// <summary>MPI_Init_thread (asking for MPI_THREAD_MULTIPLE, so the watchdog may call MPI_Abort), rank and size.</summary>
    public static MpiCommunicator Initialize(TimeSpan timeout)
    {
        MpiNative.Load();
        int flag, provided, rank, size;
        Check(MpiNative.Initialized(&flag), "MPI_Initialized");
        if (flag == 0) Check(MpiNative.InitThread(null, null, MpiNative.ThreadMultiple, &provided), "MPI_Init_thread");
        else provided = 0;
        Check(MpiNative.CommRank(MpiNative.CommWorld, &rank), "MPI_Comm_rank");
        Check(MpiNative.CommSize(MpiNative.CommWorld, &size), "MPI_Comm_size");
        return new MpiCommunicator(rank, size, timeout, provided >= MpiNative.ThreadMultiple);
    }

    public void AllreduceSum(Span<float> data) => Reduce(data, MpiNative.Float, MpiNative.OpSum, "MPI_Allreduce(sum)");
    public void AllreduceSum(Span<double> data) => Reduce(data, MpiNative.Double, MpiNative.OpSum, "MPI_Allreduce(sum)");
    public void AllreduceMax(Span<double> data) => Reduce(data, MpiNative.Double, MpiNative.OpMax, "MPI_Allreduce(max)");

    private void Reduce<T>(Span<T> data, nint type, nint op, string name) where T : unmanaged
    {
        if (data.IsEmpty) return;
        fixed (T* p = data)
        {
            nint buffer = (nint)p; int n = data.Length;
            Run(name, () => MpiNative.Allreduce(MpiNative.InPlace, buffer, n, type, op, MpiNative.CommWorld));
        }
    }

    public void Broadcast(Span<float> data, int root) => Bcast(data, MpiNative.Float, root);
    public void Broadcast(Span<double> data, int root) => Bcast(data, MpiNative.Double, root);

    private void Bcast<T>(Span<T> data, nint type, int root) where T : unmanaged
    {
        if (data.IsEmpty) return;
        fixed (T* p = data)
        {
            nint buffer = (nint)p; int n = data.Length;
            Run($"MPI_Bcast(from rank {root})", () => MpiNative.Bcast(buffer, n, type, root, MpiNative.CommWorld));
        }
    }

    public void Send(ReadOnlySpan<float> data, int destination)
    {
        fixed (float* p = data)
        {
            nint buffer = (nint)p; int n = data.Length;
            Run($"MPI_Send(to rank {destination})", () => MpiNative.Send(buffer, n, MpiNative.Float, destination, 0, MpiNative.CommWorld));
        }
    }

    public void Receive(Span<float> data, int source)
    {
        fixed (float* p = data)
        {
            nint buffer = (nint)p; int n = data.Length;
            Run($"MPI_Recv(from rank {source})", () => MpiNative.Recv(buffer, n, MpiNative.Float, source, 0, MpiNative.CommWorld, 0));
        }
    }

    public void Barrier(string what) => Run($"MPI_Barrier({what})", () => MpiNative.Barrier(MpiNative.CommWorld));

    public void Abort(int exitCode)
    {
        Console.Error.Flush();
        MpiNative.Abort(MpiNative.CommWorld, exitCode);
        MpiNative.ExitNow(exitCode);   // MPI_Abort does not return; this is the fallback if it ever does
    }

    /// <summary>One blocking MPI call, timed and watched.</summary>
    private void Run(string name, Func<int> call)
    {
        if (_closed) throw new ObjectDisposedException(nameof(MpiCommunicator), $"{name} after MPI_Finalize");
        _op = name;
        long start = Stopwatch.GetTimestamp();
        Volatile.Write(ref _opStart, start);
        int rc = call();
        Volatile.Write(ref _opStart, 0);
        Interlocked.Add(ref _collectiveTicks, Stopwatch.GetTimestamp() - start);
        Check(rc, name);
    }

    private void Watch()
    {
        while (!_closed)
        {
            Thread.Sleep(100);
            long start = Volatile.Read(ref _opStart);
            if (start == 0 || Stopwatch.GetElapsedTime(start) < Timeout) continue;
            Console.Error.WriteLine($"rank {Rank}/{Size}: error: {_op} did not complete within {Timeout.TotalSeconds:F0} s " +
                                    "(distributed.collective_timeout_s): another rank has died or stalls; ending the job");
            Console.Error.Flush();
            if (_threadMultiple) MpiNative.Abort(MpiNative.CommWorld, ExitCodes.CollectiveTimeout);
            MpiNative.ExitNow(ExitCodes.CollectiveTimeout);
        }
    }

    private static void Check(int rc, string name)
    {
        // With MPI_ERRORS_ARE_FATAL (the default) a failing call aborts inside MPI; this catches the rest.
        if (rc != MpiNative.Success) throw new InvalidOperationException($"{name} failed with MPI error {rc}");
    }

    /// <summary>MPI_Finalize after a barrier, so no rank leaves while another still writes.</summary>
    public void Dispose()
    {
        if (_closed) return;
        Barrier("finish");
        _closed = true;
        _sigterm?.Dispose();
        int done;
        MpiNative.Finalized(&done);
        if (done == 0) MpiNative.Finalize();
    }
}

/// <summary>Exit codes of a distributed run beyond the trainer's own (2 config, 3 diverged, 1 other).</summary>
public static class ExitCodes
{
    public const int CollectiveTimeout = 4;
}
