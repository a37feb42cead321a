using InstructTune.Engine.Kernels;
using InstructTune.Training.Config;

namespace InstructTune.Distributed;

/// <summary>
/// Where a process learns that mpirun started it, and how many cores it may use. Open MPI exports
/// OMPI_COMM_WORLD_SIZE / _RANK / _LOCAL_SIZE to every rank it launches; a process without them is a job of one
/// and never loads libmpi (so a machine without Open MPI trains as before).
/// </summary>
public static class MpiJob
{
    public static int WorldSize => Read("OMPI_COMM_WORLD_SIZE") ?? 1;
    public static int WorldRank => Read("OMPI_COMM_WORLD_RANK") ?? 0;
    /// <summary>Ranks sharing this machine (their threads share its cores).</summary>
    public static int LocalSize => Read("OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1;

    /// <summary>The job's communicator: MPI when mpirun started more than one rank, else <see cref="SingleProcess"/>.</summary>
    public static ICommunicator Start(DistributedSection d)
    {
        if (d.CollectiveTimeoutS <= 0) throw new ConfigException("distributed.collective_timeout_s: must be positive");
        return WorldSize > 1 ? MpiCommunicator.Initialize(TimeSpan.FromSeconds(d.CollectiveTimeoutS)) : SingleProcess.Instance;
    }

    /// <summary>distributed.threads_per_rank, or the cores divided among the ranks of this node (at least 1).</summary>
    public static int ThreadsPerRank(DistributedSection d)
    {
        if (d.ThreadsPerRank < 0) throw new ConfigException("distributed.threads_per_rank: must be ≥ 0 (0 = cores ÷ ranks on the node)");
        return d.ThreadsPerRank > 0 ? d.ThreadsPerRank : Math.Max(1, Environment.ProcessorCount / LocalSize);
    }

    /// <summary>Sets the engine's thread pools (element-wise kernels and GEMM, OpenBLAS included) to the rank's share.</summary>
    public static int ApplyThreads(DistributedSection d)
    {
        int threads = ThreadsPerRank(d);
        Parallel2.Threads = threads;
        Gemm.MaxThreads = threads;
        return threads;
    }

    private static int? Read(string name) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out var v) && v > 0 ? v : null;
}
