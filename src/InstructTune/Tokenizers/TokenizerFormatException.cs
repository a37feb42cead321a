namespace InstructTune.Tokenizers;

/// <summary>A tokenizer file that cannot be used: the message names the file and the field that is wrong.</summary>
public sealed class TokenizerFormatException(string message, Exception? inner = null) : InstructTune.Common.InputException(message, inner);
