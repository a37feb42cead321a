using InstructTune.Common;
using InstructTune.Tests.Checkpoints;

namespace InstructTune.Tests.Common;

/// <summary>The shared test data is found beside a checkout, and for a clone made elsewhere beside its origin.</summary>
public class SharedTestDataTests
{
    [Fact]
    public void Found_above_the_start_or_beside_the_clones_local_origin()
    {
        using var tmp = new TempDir();
        // work/shared/testdata and work/main (the origin); a clone in an unrelated folder names main as origin.
        var testdata = Directory.CreateDirectory(Path.Combine(tmp.Path, "work", "shared", "testdata")).FullName;
        var origin = Directory.CreateDirectory(Path.Combine(tmp.Path, "work", "main")).FullName;
        var clone = Directory.CreateDirectory(Path.Combine(tmp.Path, "elsewhere", "clone", "tests", "bin")).FullName;
        var cloneRoot = Path.Combine(tmp.Path, "elsewhere", "clone");
        Directory.CreateDirectory(Path.Combine(cloneRoot, ".git"));

        Assert.Null(SharedTestData.Locate([clone]));   // no origin recorded yet: nothing above the clone
        File.WriteAllText(Path.Combine(cloneRoot, ".git", "config"),
            "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = /nowhere\n[remote \"origin\"]\n\turl = " + origin + "\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n");
        Assert.Equal(testdata, SharedTestData.Locate([clone]));
        Assert.Equal(testdata, SharedTestData.Locate([origin]));  // beside the checkout itself
    }
}
