namespace InstructTune.Training.Regularizers;

/// <summary>
/// A penalty on the parameters themselves (not on the data). Its gradient is added straight into the
/// parameters' gradients after backward, which is exactly what differentiating the penalty term would give,
/// without recording it on the tape. Returns the penalty's value for the loss that is logged.
/// </summary>
public interface IRegularizer
{
    double AddToGradients();
}
