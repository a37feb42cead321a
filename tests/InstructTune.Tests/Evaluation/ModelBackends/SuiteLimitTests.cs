using InstructTune.Evaluation.ModelBackends;
using InstructTune.Evaluation.Suites;

namespace InstructTune.Tests.Evaluation.ModelBackends;

/// <summary>`eval model --limit N` keeps N items of each part spread over it, not the first N (issue 13: the first N
/// left the generalization section without unseen tasks).</summary>
public class SuiteLimitTests
{
    [Fact]
    public void LimitSpreadsEachPartEvenly()
    {
        var suite = BuiltinSuite.Create();
        int n = 3;
        var limited = ModelEvaluation.Limit(suite, n);
        Assert.Equal(n, limited.Instructions.Count);
        var all = suite.Instructions.ToList();
        for (int i = 0; i < n; i++)
        {
            int at = all.IndexOf(limited.Instructions[i]);
            Assert.InRange(at, i * all.Count / n, (i + 1) * all.Count / n - 1);
        }
        // The last item chosen comes from the last third, not from the start of the part.
        Assert.True(all.IndexOf(limited.Instructions[^1]) >= 2 * all.Count / n);
        Assert.Equal(suite.Generalization?.Train?.Count, limited.Generalization?.Train?.Count);
        Assert.Same(suite, ModelEvaluation.Limit(suite, 0));
    }
}
