namespace InstructTune.Evaluation.Metrics;

/// <summary>
/// rouge_score's default tokenizer: lowercase, every run of characters outside [a-z0-9] becomes a space, split on
/// whitespace, Porter-stem (NLTK default mode) the tokens longer than 3 characters when asked, keep only tokens
/// that are still [a-z0-9]+. Non-ASCII letters therefore vanish, as they do in rouge_score.
/// </summary>
public static class RougeTokenizer
{
    public static List<string> Tokenize(string text, bool stem)
    {
        var lower = PythonText.Lower(text);
        var tokens = new List<string>();
        var current = new System.Text.StringBuilder();
        foreach (var c in lower)
        {
            if (c is >= 'a' and <= 'z' or >= '0' and <= '9') current.Append(c);
            else Flush();
        }
        Flush();
        return tokens;

        void Flush()
        {
            if (current.Length == 0) return;
            var token = current.ToString();
            current.Clear();
            if (stem && token.Length > 3) token = PorterStemmer.Stem(token);
            // The stemmer only ever emits a-z, so the [a-z0-9]+ filter drops nothing except empty results.
            if (token.Length > 0) tokens.Add(token);
        }
    }
}
