namespace InstructTune.Common;

/// <summary>
/// The base of every error a user can fix: a bad file, config key, override, tensor, argument or a broken
/// environment (a refused connection, a full disk). The message is one line that names the thing (file and
/// line, key, tensor or option) and the problem; the CLI prints it as is with exit code 2 and no stack trace
/// (docs/RELIABILITY.md, "Error policy"). Library code throws a subclass of this (or one of the BCL types the
/// policy also treats as input errors: IOException, UnauthorizedAccessException, InvalidDataException,
/// ArgumentException, FormatException); anything else that escapes is reported as an internal error.
/// </summary>
public class InputException : Exception
{
    public InputException(string message) : base(message) { }

    public InputException(string message, Exception? inner) : base(message, inner) { }
}
