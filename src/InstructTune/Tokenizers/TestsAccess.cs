// Tokenizer components (normalizers, pre-tokenizers, decoders) stay internal; the tests check them one by one.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("InstructTune.Tests")]
