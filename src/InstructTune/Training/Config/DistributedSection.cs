namespace InstructTune.Training.Config;

/// <summary>
/// `distributed:` — data-parallel training over MPI (`mpirun -np N itune train …` or `itune train --launcher mpi
/// --ranks N`). Read only when the run has more than one rank; a one-process run ignores nothing here because
/// every key has a one-process meaning too (threads_per_rank sets the process's threads).
/// </summary>
public sealed class DistributedSection
{
    /// <summary>0: every rank keeps the whole AdamW state; 1: ZeRO-1, each rank keeps and updates the state of its
    /// share of the trainable parameters and broadcasts them after the step (optimizer memory ÷ ranks).</summary>
    public int ZeroStage { get; set; } = 0;
    /// <summary>Seconds a collective may wait for the other ranks before the job is aborted with an error naming
    /// the rank and the call. Must cover what rank 0 does alone (validation, checkpoint writes, export).</summary>
    public double CollectiveTimeoutS { get; set; } = 600;
    /// <summary>Compute threads of each rank; 0 = the machine's cores divided by the ranks on this node.</summary>
    public int ThreadsPerRank { get; set; } = 0;
    /// <summary>Gradient allreduce bucket size in MiB (bigger: fewer calls; smaller: less scratch memory).</summary>
    public double BucketMb { get; set; } = 25;
}
