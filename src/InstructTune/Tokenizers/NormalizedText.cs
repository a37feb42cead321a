using System.Text;

namespace InstructTune.Tokenizers;

/// <summary>
/// Text after normalization together with, for every UTF-16 unit, the [start, end) span of the original input it
/// came from. This is how token offsets stay exact through Prepend/Replace/NFC/Metaspace rewrites: a token covering
/// normalized units [s, e) covers the original span (OriginalStart(s), OriginalEnd(e)).
/// The identity case (no normalizer) keeps no arrays: unit i maps to baseOffset + i.
/// </summary>
public sealed class NormalizedText
{
    private readonly int[]? _starts; // per unit: original start; null = identity
    private readonly int[]? _ends;   // per unit: original end (exclusive)
    private readonly int _base;

    public string Text { get; }

    private NormalizedText(string text, int[]? starts, int[]? ends, int baseOffset)
    {
        Text = text; _starts = starts; _ends = ends; _base = baseOffset;
    }

    /// <summary>original[start..end) unchanged; offsets are relative to the whole original string.</summary>
    public static NormalizedText Identity(string original, int start, int end) =>
        new(original.Substring(start, end - start), null, null, start);

    internal static NormalizedText FromArrays(string text, int[] starts, int[] ends) => new(text, starts, ends, 0);

    public bool IsIdentity => _starts == null;

    /// <summary>Original start of normalized unit i (i may equal Text.Length: the end of the last unit).</summary>
    public int OriginalStart(int i)
    {
        if (_starts == null) return _base + i;
        if (i < _starts.Length) return _starts[i];
        return _ends!.Length == 0 ? _base : _ends[^1];
    }

    /// <summary>Original end of the unit before position i (i = exclusive end of a normalized range).</summary>
    public int OriginalEnd(int i)
    {
        if (_starts == null) return _base + i;
        if (i <= 0) return _starts.Length == 0 ? _base : _starts[0];
        return _ends![i - 1];
    }

    public (int Start, int End) OriginalSpan(int start, int end) =>
        end > start ? (OriginalStart(start), OriginalEnd(end)) : (OriginalStart(start), OriginalStart(start));
}

/// <summary>Builds a <see cref="NormalizedText"/> unit by unit, each with the original span it stands for.</summary>
internal sealed class NormalizedBuilder(int capacity)
{
    private char[] _text = new char[Math.Max(4, capacity)];
    private int[] _starts = new int[Math.Max(4, capacity)];
    private int[] _ends = new int[Math.Max(4, capacity)];
    private int _n;

    public int Length => _n;

    public void Append(char c, int origStart, int origEnd)
    {
        if (_n == _text.Length)
        {
            Array.Resize(ref _text, _n * 2); Array.Resize(ref _starts, _n * 2); Array.Resize(ref _ends, _n * 2);
        }
        _text[_n] = c; _starts[_n] = origStart; _ends[_n] = origEnd; _n++;
    }

    public void Append(ReadOnlySpan<char> s, int origStart, int origEnd)
    {
        foreach (var c in s) Append(c, origStart, origEnd);
    }

    /// <summary>Copies units [start, end) of src with their own alignment.</summary>
    public void AppendFrom(NormalizedText src, int start, int end)
    {
        for (int i = start; i < end; i++) Append(src.Text[i], src.OriginalStart(i), src.OriginalEnd(i + 1));
    }

    /// <summary>Removes trailing units equal to c.</summary>
    public void TrimEnd(char c)
    {
        while (_n > 0 && _text[_n - 1] == c) _n--;
    }

    public NormalizedText Build() =>
        NormalizedText.FromArrays(new string(_text, 0, _n), _starts.AsSpan(0, _n).ToArray(), _ends.AsSpan(0, _n).ToArray());
}
