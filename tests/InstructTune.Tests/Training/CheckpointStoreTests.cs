using InstructTune.Training.Checkpointing;

namespace InstructTune.Tests.Training;

public class CheckpointStoreTests
{
    private static string NewRunDir() => Directory.CreateTempSubdirectory("ckpt").FullName;

    [Fact]
    public void KeepsTheNewestKAndResolvesLatest()
    {
        var run = NewRunDir();
        var store = new CheckpointStore(run, keepLast: 2);
        foreach (var step in new[] { 10L, 20, 30 })
            store.Save(step, dir => File.WriteAllText(Path.Combine(dir, "w.txt"), step.ToString()));
        Assert.Equal([20L, 30L], store.List().Select(c => c.Step));
        Assert.Equal("30", File.ReadAllText(Path.Combine(store.Latest()!, "w.txt")));
        Assert.Equal(store.Latest(), CheckpointStore.Resolve("latest", run));
        Assert.Equal(store.Latest(), CheckpointStore.Resolve(run, "unused"));
    }

    [Fact]
    public void AFailedWriteLeavesThePreviousCheckpointsIntact()
    {
        var run = NewRunDir();
        var store = new CheckpointStore(run);
        store.Save(1, dir => File.WriteAllText(Path.Combine(dir, "w.txt"), "good"));
        Assert.Throws<IOException>(() => store.Save(2, dir =>
        {
            File.WriteAllText(Path.Combine(dir, "w.txt"), "half");
            throw new IOException("disk full (simulated)");
        }));
        Assert.Equal([1L], store.List().Select(c => c.Step));
        Assert.Empty(Directory.EnumerateDirectories(run, ".tmp-*"));
    }

    [Fact]
    public void AFolderWithoutTheCompletionMarkerIsNotACheckpoint()
    {
        var run = NewRunDir();
        Directory.CreateDirectory(Path.Combine(run, "checkpoint-000005"));   // as if renamed but never completed
        var store = new CheckpointStore(run);
        Assert.Null(store.Latest());
        Assert.Throws<FileNotFoundException>(() => CheckpointStore.Resolve("latest", run));
    }

    [Fact]
    public void ResavingAStepReplacesIt()
    {
        var store = new CheckpointStore(NewRunDir());
        store.Save(7, dir => File.WriteAllText(Path.Combine(dir, "w.txt"), "first"));
        store.Save(7, dir => File.WriteAllText(Path.Combine(dir, "w.txt"), "second"));
        Assert.Equal("second", File.ReadAllText(Path.Combine(store.Latest()!, "w.txt")));
        Assert.Single(store.List());
    }
}
