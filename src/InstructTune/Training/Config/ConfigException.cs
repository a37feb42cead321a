namespace InstructTune.Training.Config;

/// <summary>
/// A configuration error: an unknown key, a wrong type, an out-of-range value or a missing path. The message
/// names the key (and the file:line or the key=value override it came from); <see cref="Key"/> is the dotted key
/// when one is known, so callers can tell which setting to fix. The CLI prints it as one line, exit code 2.
/// </summary>
public sealed class ConfigException(string message, string? key = null) : InstructTune.Common.InputException(message)
{
    public string? Key { get; } = key;

    /// <summary>True once the message names where the value came from (file:line or override).</summary>
    internal bool Located { get; init; }
}
