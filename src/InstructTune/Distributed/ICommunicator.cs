namespace InstructTune.Distributed;

/// <summary>
/// The collectives data-parallel training needs, over the ranks of one job. Every rank calls the same
/// collectives in the same order with the same lengths (MPI's contract); a rank that never arrives is caught by
/// the implementation's timeout, not waited for forever. Spans are float32 or float64, reduced in place.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's index, 0..Size−1; rank 0 alone writes files.</summary>
    int Rank { get; }
    int Size { get; }
    /// <summary>Seconds spent inside collectives so far (for logs and the step bench).</summary>
    double CollectiveSeconds { get; }

    /// <summary>data ← Σ over ranks of data (element-wise).</summary>
    void AllreduceSum(Span<float> data);
    /// <inheritdoc cref="AllreduceSum(Span{float})"/>
    void AllreduceSum(Span<double> data);
    /// <summary>data ← max over ranks of data (element-wise).</summary>
    void AllreduceMax(Span<double> data);
    /// <summary>Every rank's data ← root's data.</summary>
    void Broadcast(Span<float> data, int root);
    /// <inheritdoc cref="Broadcast(Span{float}, int)"/>
    void Broadcast(Span<double> data, int root);
    /// <summary>Point to point (ZeRO-1 gathers optimizer state on rank 0 for checkpoints).</summary>
    void Send(ReadOnlySpan<float> data, int destination);
    void Receive(Span<float> data, int source);
    /// <summary>Waits until every rank arrives; <paramref name="what"/> names the point in a timeout error.</summary>
    void Barrier(string what);
    /// <summary>Ends every rank of the job with <paramref name="exitCode"/> (MPI_Abort); does not return.</summary>
    void Abort(int exitCode);
}

/// <summary>A job of one: every collective is the identity. What the trainer uses when not started by mpirun.</summary>
public sealed class SingleProcess : ICommunicator
{
    public static SingleProcess Instance { get; } = new();
    public int Rank => 0;
    public int Size => 1;
    public double CollectiveSeconds => 0;
    public void AllreduceSum(Span<float> data) { }
    public void AllreduceSum(Span<double> data) { }
    public void AllreduceMax(Span<double> data) { }
    public void Broadcast(Span<float> data, int root) { }
    public void Broadcast(Span<double> data, int root) { }
    public void Send(ReadOnlySpan<float> data, int destination) => throw new InvalidOperationException("a single process has no other rank");
    public void Receive(Span<float> data, int source) => throw new InvalidOperationException("a single process has no other rank");
    public void Barrier(string what) { }
    public void Abort(int exitCode) => Environment.Exit(exitCode);
    public void Dispose() { }
}
