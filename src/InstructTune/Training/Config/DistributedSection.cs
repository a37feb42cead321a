namespace InstructTune.Training.Config;

// `distributed:` — data-parallel training over MPI (`mpirun -np N itune train …` or `itune train --launcher mpi
// --ranks N`; src/InstructTune/Distributed). threads_per_rank also sets a one-process run's threads; the other
// keys act when the job has more than one rank.

public sealed class DistributedSection
{
    [ConfigKey("0: every rank keeps the whole AdamW state; 1: ZeRO-1, each rank keeps and updates the state of its share of the trainable parameters and broadcasts them after the step (optimizer memory ÷ ranks).", Min = 0, Max = 1)]
    public int ZeroStage { get; set; } = 0;
    [ConfigKey("Seconds a collective may wait for the other ranks before the job is aborted with an error naming the rank and the call; must cover what rank 0 does alone (validation, checkpoint writes, export).", Min = 0, MinExclusive = true)]
    public double CollectiveTimeoutS { get; set; } = 600;
    [ConfigKey("Compute threads of each rank; 0 = the machine's cores divided by the ranks on this node.", Min = 0)]
    public int ThreadsPerRank { get; set; } = 0;
    [ConfigKey("Gradient allreduce bucket in MiB (bigger: fewer MPI calls; smaller: less scratch memory).", Min = 0, MinExclusive = true)]
    public double BucketMb { get; set; } = 25;
}
