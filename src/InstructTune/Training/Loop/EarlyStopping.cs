namespace InstructTune.Training.Loop;

/// <summary>Stops when the validation loss has not improved by more than <c>minDelta</c> for <c>patience</c> evaluations (0 = never).</summary>
public sealed class EarlyStopping(int patience, double minDelta = 0.0)
{
    public double Best { get; private set; } = double.PositiveInfinity;
    public int BadEvaluations { get; private set; }

    /// <summary>Records one evaluation; returns true when training should stop.</summary>
    public bool Observe(double validationLoss)
    {
        if (validationLoss < Best - minDelta) { Best = validationLoss; BadEvaluations = 0; }
        else BadEvaluations++;
        return patience > 0 && BadEvaluations >= patience;
    }
}
