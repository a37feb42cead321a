namespace InstructTune.Training.Config;

/// <summary>A configuration error: an unknown key, a wrong type or a missing path, always naming the key.</summary>
public sealed class ConfigException(string message) : InstructTune.Common.InputException(message);
