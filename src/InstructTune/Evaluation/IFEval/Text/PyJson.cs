namespace InstructTune.Evaluation.IFEval.Text;

/// <summary>
/// Whether CPython's <c>json.loads</c> accepts a string: RFC 8259 JSON plus the literals <c>NaN</c>,
/// <c>Infinity</c> and <c>-Infinity</c>, any top-level value, whitespace limited to space/tab/CR/LF, no control
/// characters inside strings (strict mode), no trailing commas. System.Text.Json differs on NaN/Infinity
/// and lone-surrogate escapes, so IFEval's <c>json_format</c> check uses this validator instead.
/// </summary>
public static class PyJson
{
    public static bool IsValid(string s)
    {
        int i = SkipWs(s, 0);
        if (!Value(s, ref i, 0)) return false;
        return SkipWs(s, i) == s.Length;
    }

    private static int SkipWs(string s, int i)
    {
        while (i < s.Length && s[i] is ' ' or '\t' or '\n' or '\r') i++;
        return i;
    }

    private static bool Value(string s, ref int i, int depth)
    {
        if (i >= s.Length || depth > 900) return false;
        switch (s[i])
        {
            case '{': return Obj(s, ref i, depth);
            case '[': return Arr(s, ref i, depth);
            case '"': return Str(s, ref i);
            case 'n': return Lit(s, ref i, "null");
            case 't': return Lit(s, ref i, "true");
            case 'f': return Lit(s, ref i, "false");
            case 'N': return Lit(s, ref i, "NaN");
            case 'I': return Lit(s, ref i, "Infinity");
            case '-' when i + 1 < s.Length && s[i + 1] == 'I': return Lit(s, ref i, "-Infinity");
            default: return Num(s, ref i);
        }
    }

    private static bool Lit(string s, ref int i, string lit)
    {
        if (string.CompareOrdinal(s, i, lit, 0, lit.Length) != 0) return false;
        i += lit.Length;
        return true;
    }

    private static bool IsDigit(string s, int i) => i < s.Length && s[i] is >= '0' and <= '9';

    // CPython's C scanner: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)? where an incomplete fraction/exponent is not consumed.
    private static bool Num(string s, ref int i)
    {
        int j = i;
        if (j < s.Length && s[j] == '-') j++;
        if (!IsDigit(s, j)) return false;
        if (s[j] == '0') j++;
        else while (IsDigit(s, j)) j++;
        if (j < s.Length && s[j] == '.' && IsDigit(s, j + 1))
        {
            j++;
            while (IsDigit(s, j)) j++;
        }
        if (j < s.Length && s[j] is 'e' or 'E')
        {
            int k = j + 1;
            if (k < s.Length && s[k] is '+' or '-') k++;
            if (IsDigit(s, k))
            {
                while (IsDigit(s, k)) k++;
                j = k;
            }
        }
        i = j;
        return true;
    }

    private static bool Str(string s, ref int i)
    {
        i++; // opening quote
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '"') { i++; return true; }
            if (c < 0x20) return false;
            if (c == '\\')
            {
                if (++i >= s.Length) return false;
                char e = s[i];
                if (e == 'u')
                {
                    for (int k = 1; k <= 4; k++)
                        if (i + k >= s.Length || !Uri.IsHexDigit(s[i + k])) return false;
                    i += 5;
                    continue;
                }
                if (e is not ('"' or '\\' or '/' or 'b' or 'f' or 'n' or 'r' or 't')) return false;
            }
            i++;
        }
        return false;
    }

    private static bool Arr(string s, ref int i, int depth)
    {
        i = SkipWs(s, i + 1);
        if (i < s.Length && s[i] == ']') { i++; return true; }
        while (true)
        {
            if (!Value(s, ref i, depth + 1)) return false;
            i = SkipWs(s, i);
            if (i >= s.Length) return false;
            if (s[i] == ']') { i++; return true; }
            if (s[i] != ',') return false;
            i = SkipWs(s, i + 1);
        }
    }

    private static bool Obj(string s, ref int i, int depth)
    {
        i = SkipWs(s, i + 1);
        if (i < s.Length && s[i] == '}') { i++; return true; }
        while (true)
        {
            if (i >= s.Length || s[i] != '"' || !Str(s, ref i)) return false;
            i = SkipWs(s, i);
            if (i >= s.Length || s[i] != ':') return false;
            i = SkipWs(s, i + 1);
            if (!Value(s, ref i, depth + 1)) return false;
            i = SkipWs(s, i);
            if (i >= s.Length) return false;
            if (s[i] == '}') { i++; return true; }
            if (s[i] != ',') return false;
            i = SkipWs(s, i + 1);
        }
    }
}
