// Rotary frequencies and the cos/sin table, computed as Hugging Face does: inv_freq in float32 from
// theta^(2i/hd), rescaled for "linear" or "llama3" rope scaling, angle = position·inv_freq in float32.
namespace InstructTune.Models.Inference;

public sealed class RotaryTable
{
    private readonly float[] _invFreq;
    private float[] _cos = [], _sin = [];
    private int _positions;

    public int Half { get; }

    public RotaryTable(LlamaConfig c)
    {
        int hd = c.HeadDim;
        Half = hd / 2;
        _invFreq = InvFreq(c);
    }

    public static float[] InvFreq(LlamaConfig c)
    {
        int hd = c.HeadDim;
        var inv = new float[hd / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = 1f / MathF.Pow((float)c.RopeTheta, (float)(2 * i) / hd);
        if (c.RopeScaling is not { } s) return inv;
        switch (s.Type)
        {
            case "linear":
                for (int i = 0; i < inv.Length; i++) inv[i] /= (float)s.Factor;
                return inv;
            case "llama3":
                // Long wavelengths are divided by factor, short ones kept, the band between interpolated.
                double lowWl = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
                double highWl = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
                for (int i = 0; i < inv.Length; i++)
                {
                    float f = inv[i];
                    float wl = 2 * MathF.PI / f;
                    if (wl > lowWl) inv[i] = f / (float)s.Factor;
                    else if (wl >= highWl)
                    {
                        float smooth = (float)((s.OriginalMaxPositionEmbeddings / wl - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor));
                        inv[i] = (1 - smooth) * f / (float)s.Factor + smooth * f;
                    }
                }
                return inv;
            default:
                throw new NotSupportedException($"rope_scaling type \"{s.Type}\" is not supported");
        }
    }

    /// <summary>cos and sin (hd/2 values each) for one position; the table grows on demand.</summary>
    public void At(int position, out ReadOnlySpan<float> cos, out ReadOnlySpan<float> sin)
    {
        Ensure(position);
        cos = _cos.AsSpan(position * Half, Half);
        sin = _sin.AsSpan(position * Half, Half);
    }

    /// <summary>Grows the table to cover <paramref name="position"/> (call before parallel readers).</summary>
    public void Ensure(int position)
    {
        if (position >= _positions) Grow(Math.Max(position + 1, _positions * 2));
    }

    private void Grow(int n)
    {
        lock (_invFreq)
        {
            if (n <= _positions) return;
            var cos = new float[n * Half];
            var sin = new float[n * Half];
            for (int p = 0; p < n; p++)
                for (int i = 0; i < Half; i++)
                {
                    float angle = p * _invFreq[i];   // float32 product, as torch computes it
                    cos[p * Half + i] = (float)Math.Cos(angle);
                    sin[p * Half + i] = (float)Math.Sin(angle);
                }
            _cos = cos; _sin = sin; _positions = n;
        }
    }
}
