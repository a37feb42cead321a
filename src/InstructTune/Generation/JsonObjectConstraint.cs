// Constrained decoding for OpenAI's response_format {"type":"json_object"}: a token is allowed only when the
// decoded continuation stays a prefix of one JSON object (RFC 8259 grammar, leading whitespace allowed), and once
// the object is closed only an end-of-sequence id is. The sampler draws as usual and redraws without a refused
// token (BatchDecoder), so greedy decoding takes the most likely token that keeps the text valid JSON.
using InstructTune.Tokenizers;

namespace InstructTune.Generation;

/// <summary>Decides whether a candidate token may follow the tokens generated so far.</summary>
public interface ITokenConstraint
{
    bool Allows(IReadOnlyList<int> generated, int token);
}

public sealed class JsonObjectConstraint(ITokenizer tokenizer, IReadOnlyList<int> stopIds) : ITokenConstraint
{
    public bool Allows(IReadOnlyList<int> generated, int token)
    {
        if (stopIds.Contains(token))
            return JsonPrefix.Check(tokenizer.Decode([.. generated], skipSpecialTokens: true)) == JsonPrefix.State.Complete;
        if (tokenizer.IsSpecialToken(token)) return false;
        var text = tokenizer.Decode([.. generated, token], skipSpecialTokens: true);
        // A trailing U+FFFD is a character still being formed from byte tokens: allowed only where any non-ASCII
        // character is, inside a string ("é" stands in for it).
        if (text.EndsWith('\uFFFD')) return JsonPrefix.Check(text.TrimEnd('\uFFFD') + "é") == JsonPrefix.State.Prefix;
        return JsonPrefix.Check(text) == JsonPrefix.State.Prefix;
    }
}

/// <summary>Is a text a prefix of one JSON object (whitespace around it allowed)?</summary>
public static class JsonPrefix
{
    public enum State { Invalid, Prefix, Complete }

    public static State Check(string s)
    {
        var stack = new Stack<char>();          // open containers: '{' or '['
        // What the next non-space character may be: V value, K key or '}', k key, C ':' , N ',' or close, A value or ']'
        char expect = 'O';                      // O: the opening '{' of the top-level object
        bool done = false;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is ' ' or '\t' or '\n' or '\r') continue;
            if (done) return State.Invalid;
            switch (expect)
            {
                case 'O':
                    if (c != '{') return State.Invalid;
                    stack.Push('{'); expect = 'K'; break;
                case 'K' or 'k':
                    if (c == '}' && expect == 'K') { stack.Pop(); AfterValue(); break; }
                    if (c != '"') return State.Invalid;
                    if (String(s, ref i) is var r && r <= 0) return r < 0 ? State.Invalid : State.Prefix;
                    expect = 'C'; break;
                case 'C':
                    if (c != ':') return State.Invalid;
                    expect = 'V'; break;
                case 'N':
                    if (c == ',') { expect = stack.Peek() == '{' ? 'k' : 'V'; break; }
                    if (c == '}' && stack.Peek() == '{' || c == ']' && stack.Peek() == '[') { stack.Pop(); AfterValue(); break; }
                    return State.Invalid;
                case 'V' or 'A':
                    if (c == ']' && expect == 'A') { stack.Pop(); AfterValue(); break; }
                    if (c == '{') { stack.Push('{'); expect = 'K'; break; }
                    if (c == '[') { stack.Push('['); expect = 'A'; break; }
                    if (c == '"') { if (String(s, ref i) is var r2 && r2 <= 0) return r2 < 0 ? State.Invalid : State.Prefix; AfterValue(); break; }
                    if (c is 't' or 'f' or 'n')
                    {
                        string lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
                        int n = Math.Min(lit.Length, s.Length - i);
                        if (!s.AsSpan(i, n).SequenceEqual(lit.AsSpan(0, n))) return State.Invalid;
                        if (n < lit.Length) return State.Prefix;
                        i += lit.Length - 1; AfterValue(); break;
                    }
                    if (c == '-' || char.IsAsciiDigit(c))
                    {
                        int j = i;
                        while (j < s.Length && (char.IsAsciiDigit(s[j]) || s[j] is '-' or '+' or '.' or 'e' or 'E')) j++;
                        var num = s[i..j];
                        if (j == s.Length) return NumberPrefix(num) ? State.Prefix : State.Invalid;
                        if (!NumberComplete(num)) return State.Invalid;
                        i = j - 1; AfterValue(); break;
                    }
                    return State.Invalid;
            }
        }
        return done ? State.Complete : State.Prefix;

        void AfterValue()
        {
            if (stack.Count == 0) done = true;
            else expect = 'N';
        }
    }

    // Reads a string starting at s[i] == '"': 1 with i on the closing quote, 0 if the text ends inside it, -1 if invalid.
    private static int String(string s, ref int i)
    {
        for (int j = i + 1; j < s.Length; j++)
        {
            char c = s[j];
            if (c == '"') { i = j; return 1; }
            if (c < 0x20) return -1;
            if (c == '\\')
            {
                if (j + 1 >= s.Length) return 0;
                char e = s[++j];
                if (e == 'u')
                {
                    for (int k = 1; k <= 4; k++)
                        if (j + k < s.Length && !char.IsAsciiHexDigit(s[j + k])) return -1;
                    j += 4;
                }
                else if ("\"\\/bfnrt".IndexOf(e) < 0) return -1;
            }
        }
        return 0;
    }

    private static readonly System.Text.RegularExpressions.Regex Number = new(@"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$");
    private static bool NumberComplete(string n) => Number.IsMatch(n);
    // A prefix of a number: some completion of it matches the number grammar.
    private static bool NumberPrefix(string n) => NumberComplete(n) || NumberComplete(n + "0");
}
