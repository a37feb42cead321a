using System.Globalization;
using System.Text;

namespace InstructTune.Templates.Jinja;

public enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof }

/// <summary>One lexer token; Line and Column are 1-based positions in the template source.</summary>
public readonly record struct Token(TokenKind Kind, string Value, int Line, int Column, object? Literal = null);

/// <summary>A syntax error with the template position in its message.</summary>
public sealed class TemplateSyntaxException(string message, int line, int column)
    : InstructTune.Common.InputException($"template syntax error at line {line}, column {column}: {message}")
{
    public int Line { get; } = line;
    public int Column { get; } = column;
}

/// <summary>
/// Splits a template into tokens the way jinja2's lexer does with transformers' settings:
/// trim_blocks (one newline after a block or comment tag is dropped), lstrip_blocks (spaces and tabs
/// before a block or comment tag at the start of a line are dropped), `-` / `+` whitespace control on tags,
/// \r\n and \r normalised to \n, and the source's one trailing newline dropped (keep_trailing_newline=False).
/// </summary>
public static class JinjaLexer
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "*", "/", "%", "~", "[", "]", "(", ")", "{", "}", ".", ":", ",", "|", "=", "<", ">", ";"];

    public static List<Token> Tokenize(string source)
    {
        var src = NormalizeNewlines(source);
        var tokens = new List<Token>();
        var lineStarts = LineStarts(src);
        int pos = 0;
        bool lineStarting = true;
        while (pos < src.Length)
        {
            int tag = FindTagStart(src, pos);
            if (tag < 0)
            {
                tokens.Add(new Token(TokenKind.Text, src[pos..], Line(lineStarts, pos), Col(lineStarts, pos)));
                break;
            }
            char kind = src[tag + 1];
            char sign = tag + 2 < src.Length && (src[tag + 2] == '-' || src[tag + 2] == '+') ? src[tag + 2] : '\0';
            string text = src[pos..tag];
            if (sign == '-') text = text.TrimEnd(PyWhitespace);
            else if (sign != '+' && kind != '{')
            {
                // lstrip_blocks: only whitespace between the line start and the tag.
                int lpos = text.LastIndexOf('\n') + 1;
                if ((lpos > 0 || lineStarting) && lpos < text.Length && text.AsSpan(lpos).IndexOfAnyExcept(PyWhitespace) < 0)
                    text = text[..lpos];
            }
            if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, Line(lineStarts, pos), Col(lineStarts, pos)));
            int bodyStart = tag + 2 + (sign != '\0' ? 1 : 0);

            if (kind == '#')
            {
                int close = src.IndexOf("#}", bodyStart, StringComparison.Ordinal);
                if (close < 0) throw new TemplateSyntaxException("missing end of comment tag", Line(lineStarts, tag), Col(lineStarts, tag));
                char endSign = close - 1 >= bodyStart && (src[close - 1] == '-' || src[close - 1] == '+') ? src[close - 1] : '\0';
                pos = AfterTagEnd(src, close + 2, endSign);
                lineStarting = src[pos - 1] == '\n';
                continue;
            }
            if (kind == '%' && TryRaw(src, bodyStart, tokens, lineStarts, tag, out int afterRaw))
            {
                pos = afterRaw;
                lineStarting = src[pos - 1] == '\n';
                continue;
            }
            tokens.Add(new Token(kind == '{' ? TokenKind.VariableBegin : TokenKind.BlockBegin, src.Substring(tag, bodyStart - tag), Line(lineStarts, tag), Col(lineStarts, tag)));
            pos = LexExpression(src, bodyStart, kind == '{' ? "}}" : "%}", tokens, lineStarts, tag);
            lineStarting = src[pos - 1] == '\n';
        }
        tokens.Add(new Token(TokenKind.Eof, "", Line(lineStarts, src.Length), Col(lineStarts, src.Length)));
        return tokens;
    }

    /// <summary>\r\n, \r and \n become \n (jinja2's newline_re); one trailing line break is dropped.</summary>
    public static string NormalizeNewlines(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            bool isBreak = c is '\n' or '\r';
            if (!isBreak) { sb.Append(c); continue; }
            if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
            if (i + 1 < s.Length) sb.Append('\n');
        }
        return sb.ToString();
    }

    internal static readonly char[] PyWhitespace =
        [' ', '\t', '\n', '\r', '\v', '\f', '\x1c', '\x1d', '\x1e', '\x1f', '\x85', '\xa0', '\u1680', '\u2000', '\u2001', '\u2002', '\u2003',
         '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000'];

    private static int FindTagStart(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>Position after a tag end: `-` eats all following whitespace, plain block/comment ends eat one \n.</summary>
    private static int AfterTagEnd(string s, int pos, char endSign, bool isBlockOrComment = true)
    {
        if (endSign == '-') { while (pos < s.Length && Array.IndexOf(PyWhitespace, s[pos]) >= 0) pos++; }
        else if (endSign != '+' && isBlockOrComment && pos < s.Length && s[pos] == '\n') pos++;
        return pos;
    }

    private static bool TryRaw(string s, int bodyStart, List<Token> tokens, int[] lineStarts, int tag, out int after)
    {
        after = 0;
        int p = SkipSpaces(s, bodyStart);
        if (string.CompareOrdinal(s, p, "raw", 0, 3) != 0) return false;
        p = SkipSpaces(s, p + 3);
        char sign = s[p] == '-' ? '-' : '\0';
        if (sign == '-') p++;
        if (string.CompareOrdinal(s, p, "%}", 0, 2) != 0) return false;
        int contentStart = AfterTagEnd(s, p + 2, sign, isBlockOrComment: false); // jinja2: no trim_blocks newline after {% raw %}
        for (int search = contentStart; ;)
        {
            int open = s.IndexOf("{%", search, StringComparison.Ordinal);
            if (open < 0) throw new TemplateSyntaxException("missing end of raw directive", Line(lineStarts, tag), Col(lineStarts, tag));
            int q = open + 2;
            char beginSign = q < s.Length && s[q] is '-' or '+' ? s[q] : '\0';
            if (beginSign != '\0') q++;
            q = SkipSpaces(s, q);
            if (string.CompareOrdinal(s, q, "endraw", 0, 6) == 0)
            {
                q = SkipSpaces(s, q + 6);
                char endSign = s[q] == '-' ? '-' : '\0';
                if (endSign == '-') q++;
                if (string.CompareOrdinal(s, q, "%}", 0, 2) == 0)
                {
                    var text = s[contentStart..open];
                    if (beginSign == '-') text = text.TrimEnd(PyWhitespace);
                    if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, Line(lineStarts, contentStart), Col(lineStarts, contentStart)));
                    after = AfterTagEnd(s, q + 2, endSign);
                    return true;
                }
            }
            search = open + 2;
        }
    }

    private static int SkipSpaces(string s, int p)
    {
        while (p < s.Length && char.IsWhiteSpace(s[p])) p++;
        return p;
    }

    /// <summary>Lexes expression tokens up to the tag end (not counted inside brackets); returns the position after it.</summary>
    private static int LexExpression(string s, int pos, string end, List<Token> tokens, int[] lineStarts, int tagPos)
    {
        var brackets = new Stack<char>();
        var endKind = end == "}}" ? TokenKind.VariableEnd : TokenKind.BlockEnd;
        while (true)
        {
            while (pos < s.Length && char.IsWhiteSpace(s[pos])) pos++;
            if (pos >= s.Length)
                throw new TemplateSyntaxException($"unexpected end of template, expected '{end}'", Line(lineStarts, tagPos), Col(lineStarts, tagPos));
            int line = Line(lineStarts, pos), col = Col(lineStarts, pos);
            if (brackets.Count == 0)
            {
                char endSign = s[pos] is '-' or '+' && string.CompareOrdinal(s, pos + 1, end, 0, 2) == 0 ? s[pos] : '\0';
                if (endSign != '\0' || string.CompareOrdinal(s, pos, end, 0, 2) == 0)
                {
                    int after = pos + 2 + (endSign != '\0' ? 1 : 0);
                    tokens.Add(new Token(endKind, end, line, col));
                    return AfterTagEnd(s, after, endSign, endKind == TokenKind.BlockEnd);
                }
            }
            char c = s[pos];
            if (char.IsLetter(c) || c == '_')
            {
                int st = pos;
                while (pos < s.Length && (char.IsLetterOrDigit(s[pos]) || s[pos] == '_')) pos++;
                tokens.Add(new Token(TokenKind.Name, s[st..pos], line, col));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                pos = LexNumber(s, pos, tokens, line, col);
                continue;
            }
            if (c is '\'' or '"')
            {
                pos = LexString(s, pos, tokens, line, col);
                continue;
            }
            string? op = null;
            foreach (var candidate in Operators)
                if (string.CompareOrdinal(s, pos, candidate, 0, candidate.Length) == 0) { op = candidate; break; }
            if (op is null) throw new TemplateSyntaxException($"unexpected char '{c}'", line, col);
            if (op is "(" or "[" or "{") brackets.Push(op[0]);
            else if (op is ")" or "]" or "}")
            {
                char want = op == ")" ? '(' : op == "]" ? '[' : '{';
                if (brackets.Count == 0) throw new TemplateSyntaxException($"unexpected '{op}'", line, col);
                if (brackets.Pop() != want) throw new TemplateSyntaxException($"unexpected '{op}'", line, col);
            }
            tokens.Add(new Token(TokenKind.Operator, op, line, col));
            pos += op.Length;
        }
    }

    private static int LexNumber(string s, int pos, List<Token> tokens, int line, int col)
    {
        int st = pos;
        while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] == '_')) pos++;
        bool isFloat = false;
        if (pos + 1 < s.Length && s[pos] == '.' && char.IsAsciiDigit(s[pos + 1]))
        {
            isFloat = true;
            pos++;
            while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] == '_')) pos++;
        }
        if (pos < s.Length && (s[pos] is 'e' or 'E'))
        {
            int q = pos + 1;
            if (q < s.Length && s[q] is '+' or '-') q++;
            if (q < s.Length && char.IsAsciiDigit(s[q]))
            {
                isFloat = true;
                pos = q;
                while (pos < s.Length && char.IsAsciiDigit(s[pos])) pos++;
            }
        }
        var text = s[st..pos].Replace("_", "");
        if (isFloat)
            tokens.Add(new Token(TokenKind.Float, text, line, col, double.Parse(text, CultureInfo.InvariantCulture)));
        else
        {
            // Python integers are unbounded; ours are 64-bit: refuse a literal that does not fit instead of crashing.
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
                throw new TemplateSyntaxException($"integer literal {(text.Length > 30 ? text[..30] + "…" : text)} does not fit in 64 bits", line, col);
            tokens.Add(new Token(TokenKind.Integer, text, line, col, value));
        }
        return pos;
    }

    /// <summary>A quoted string with Python escapes (\n \t \\ \' \" \xNN \uNNNN \UNNNNNNNN); unknown escapes stay as written.</summary>
    private static int LexString(string s, int pos, List<Token> tokens, int line, int col)
    {
        char q = s[pos++];
        var sb = new StringBuilder();
        while (true)
        {
            if (pos >= s.Length) throw new TemplateSyntaxException("unterminated string", line, col);
            char c = s[pos++];
            if (c == q) break;
            if (c != '\\') { sb.Append(c); continue; }
            if (pos >= s.Length) throw new TemplateSyntaxException("unterminated string", line, col);
            char e = s[pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0': sb.Append('\0'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '\n': break;
                case 'x': sb.Append((char)HexEscape(s, ref pos, 2, line, col)); break;
                case 'u': sb.Append((char)HexEscape(s, ref pos, 4, line, col)); break;
                case 'U': sb.Append(char.ConvertFromUtf32(HexEscape(s, ref pos, 8, line, col))); break;
                default: sb.Append('\\').Append(e); break;
            }
        }
        tokens.Add(new Token(TokenKind.String, sb.ToString(), line, col, sb.ToString()));
        return pos;
    }

    private static int HexEscape(string s, ref int pos, int n, int line, int col)
    {
        if (pos + n > s.Length || !int.TryParse(s.AsSpan(pos, n), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v))
            throw new TemplateSyntaxException("truncated \\x/\\u escape in string", line, col);
        pos += n;
        return v;
    }

    private static int[] LineStarts(string s)
    {
        var starts = new List<int> { 0 };
        for (int i = 0; i < s.Length; i++) if (s[i] == '\n') starts.Add(i + 1);
        return [.. starts];
    }

    private static int Line(int[] starts, int pos)
    {
        int i = Array.BinarySearch(starts, pos);
        return (i >= 0 ? i : ~i - 1) + 1;
    }

    private static int Col(int[] starts, int pos) => pos - starts[Line(starts, pos) - 1] + 1;
}
