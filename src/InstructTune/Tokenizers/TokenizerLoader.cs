using InstructTune.Tokenizers.SentencePiece;

namespace InstructTune.Tokenizers;

/// <summary>
/// The one entry point: <c>TokenizerLoader.Load(path)</c> with a folder holding tokenizer.json (and
/// tokenizer_config.json), a tokenizer.json file, or a SentencePiece .model file (folder with tokenizer.model or
/// spiece.model also works). BOS/EOS/PAD/UNK come from tokenizer_config.json when present.
/// </summary>
public static class TokenizerLoader
{
    public static ITokenizer Load(string path)
    {
        if (Directory.Exists(path))
        {
            foreach (var name in new[] { "tokenizer.json", "tokenizer.model", "spiece.model" })
                if (File.Exists(Path.Combine(path, name))) return Load(Path.Combine(path, name));
            throw new TokenizerFormatException($"{path}: no tokenizer.json, tokenizer.model or spiece.model in this folder");
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer not found: {path}", path);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        var config = TokenizerConfig.Load(configPath);
        if (path.EndsWith(".model", StringComparison.OrdinalIgnoreCase))
            return SentencePieceTokenizer.Load(path, config, configPath);
        var tok = TokenizerJson.Load(path);
        tok.SetSpecialTokens(config.Resolve(tok, configPath, DefaultSpecials(tok)));
        return tok;
    }

    /// <summary>What the config does not name: unk from the model, BOS from a TemplateProcessing that starts with a
    /// special token, EOS from a special added token with a conventional end name (GPT-2's &lt;|endoftext|&gt;, which
    /// transformers' GPT2Tokenizer uses by default).</summary>
    private static SpecialTokenIds DefaultSpecials(HfTokenizer tok)
    {
        int? unk = tok.Model is BpeModel bpe && bpe.Options.UnkToken is { } u ? tok.TokenToId(u) : null;
        int? bos = FindTemplate(tok.PostProcessor) is { Single: [int[] { Length: 1 } first, ..] } ? first[0] : null;
        int? eos = new[] { "<|endoftext|>", "<|end_of_text|>", "</s>" }
            .Select(n => tok.AddedTokens.ByContent(n)).FirstOrDefault(t => t is { Special: true })?.Id;
        return new SpecialTokenIds(bos, eos, null, unk);
    }

    private static TemplateProcessor? FindTemplate(IPostProcessor? p) => p switch
    {
        TemplateProcessor t => t,
        SequenceProcessor s => s.Items.Select(FindTemplate).FirstOrDefault(x => x != null),
        _ => null,
    };
}
