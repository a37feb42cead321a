// Rotary position embedding in the half-split layout of Hugging Face's rotate_half:
//   y[i]   = x[i]·cos[i] − x[i+h]·sin[i]
//   y[i+h] = x[i+h]·cos[i] + x[i]·sin[i]          for i < h = hd/2
// x, y (N, H, hd) with N = B·T rows; cos, sin (N, h): one angle table per row (its position), shared by heads.
// Frequencies: inv_freq[i] = 1/theta^(2i/hd), optionally rescaled (linear, Llama-3), angle = pos·inv_freq
// computed in float32 exactly as transformers does (so cos/sin agree bit-for-bit in the common case).
namespace InstructTune.Engine.Kernels;

public static unsafe class RopeKernel
{
    /// <summary>inv_freq (hd/2) = 1 / theta^(2i/hd), in float32 like transformers' default rope init.</summary>
    public static float[] InverseFrequencies(int headDim, double theta)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"RoPE: head dim {headDim} must be positive and even");
        var inv = new float[headDim / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            float exponent = (float)(2 * i) / headDim;
            inv[i] = 1f / (float)Math.Pow((float)theta, exponent);
        }
        return inv;
    }

    /// <summary>Linear ("position interpolation") scaling: inv_freq / factor.</summary>
    public static void ScaleLinear(Span<float> invFreq, double factor)
    {
        for (int i = 0; i < invFreq.Length; i++) invFreq[i] = invFreq[i] / (float)factor;
    }

    /// <summary>
    /// Llama-3 scaling: wavelengths longer than original/lowFreqFactor are divided by factor, shorter than
    /// original/highFreqFactor kept, and the band between interpolated smoothly (transformers' _compute_llama3_parameters).
    /// </summary>
    public static void ScaleLlama3(Span<float> invFreq, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions)
    {
        float lowWavelen = (float)(originalMaxPositions / lowFreqFactor);
        float highWavelen = (float)(originalMaxPositions / highFreqFactor);
        for (int i = 0; i < invFreq.Length; i++)
        {
            float f = invFreq[i];
            float wavelen = (float)(2 * Math.PI) / f;
            float scaled = wavelen > lowWavelen ? f / (float)factor : f;
            bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            if (medium)
            {
                float smooth = ((float)originalMaxPositions / wavelen - (float)lowFreqFactor) / (float)(highFreqFactor - lowFreqFactor);
                scaled = (1 - smooth) * scaled / (float)factor + smooth * scaled;
            }
            invFreq[i] = scaled;
        }
    }

    /// <summary>cos, sin (N, hd/2) for positions (N): angle = (float)pos · inv_freq in float32.</summary>
    public static void CosSin(ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, Span<float> cos, Span<float> sin)
    {
        int h = invFreq.Length;
        KernelChecks.Len("RoPE.CosSin", "cos", cos.Length, (long)positions.Length * h);
        KernelChecks.Len("RoPE.CosSin", "sin", sin.Length, (long)positions.Length * h);
        for (int n = 0; n < positions.Length; n++)
            for (int i = 0; i < h; i++)
            {
                float a = invFreq[i] * positions[n];
                cos[n * h + i] = (float)Math.Cos(a);
                sin[n * h + i] = (float)Math.Sin(a);
            }
    }

    /// <summary>y = rope(x). y may alias x.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> y, int N, int H, int hd)
        => Apply(x, cos, sin, y, N, H, hd, sign: 1f, accumulate: false, "RoPE.Forward");

    /// <summary>dx += rope⁻¹(dy): the rotation by −angle (the transpose of the forward rotation).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> dx, int N, int H, int hd)
        => Apply(dy, cos, sin, dx, N, H, hd, sign: -1f, accumulate: true, "RoPE.Backward");

    private static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> y,
        int N, int H, int hd, float sign, bool accumulate, string kernel)
    {
        int h = hd / 2;
        KernelChecks.Len(kernel, "x", x.Length, (long)N * H * hd);
        KernelChecks.Len(kernel, "y", y.Length, (long)N * H * hd);
        KernelChecks.Len(kernel, "cos", cos.Length, (long)N * h);
        KernelChecks.Len(kernel, "sin", sin.Length, (long)N * h);
        fixed (float* px = x, pc = cos, ps = sin, py = y)
        {
            float* X = px, Cs = pc, Sn = ps, Y = py;
            Parallel2.For(N, 3L * H * hd, (s, e) =>
            {
                for (int n = s; n < e; n++)
                {
                    float* c = Cs + (long)n * h, sn = Sn + (long)n * h;
                    for (int head = 0; head < H; head++)
                    {
                        float* xr = X + ((long)n * H + head) * hd, yr = Y + ((long)n * H + head) * hd;
                        for (int i = 0; i < h; i++)
                        {
                            float a = xr[i], b = xr[i + h], ci = c[i], si = sign * sn[i];
                            float y0 = a * ci + (-b * si), y1 = b * ci + a * si;
                            if (accumulate) { yr[i] += y0; yr[i + h] += y1; }
                            else { yr[i] = y0; yr[i + h] = y1; }
                        }
                    }
                }
            });
        }
    }

    public static void ForwardNaive(ReadOnlySpan<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> y, int N, int H, int hd)
    {
        int h = hd / 2;
        for (int n = 0; n < N; n++)
            for (int head = 0; head < H; head++)
                for (int d = 0; d < hd; d++)
                {
                    int i = d % h, o = (n * H + head) * hd;
                    double rot = d < h ? -x[o + d + h] : x[o + d - h]; // rotate_half(x)[d]
                    y[o + d] = (float)(x[o + d] * (double)cos[n * h + i] + rot * sin[n * h + i]);
                }
    }

    public static void BackwardNaive(ReadOnlySpan<float> dy, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> dx, int N, int H, int hd)
    {
        int h = hd / 2;
        for (int n = 0; n < N; n++)
            for (int head = 0; head < H; head++)
                for (int d = 0; d < hd; d++)
                {
                    int i = d % h, o = (n * H + head) * hd;
                    // y[i] = x[i]c − x[i+h]s, y[i+h] = x[i+h]c + x[i]s  ⇒  dx[i] = dy[i]c + dy[i+h]s, dx[i+h] = dy[i+h]c − dy[i]s
                    double v = d < h ? dy[o + d] * (double)cos[n * h + i] + dy[o + d + h] * (double)sin[n * h + i]
                                     : dy[o + d] * (double)cos[n * h + i] - dy[o + d - h] * (double)sin[n * h + i];
                    dx[o + d] += (float)v;
                }
    }
}
