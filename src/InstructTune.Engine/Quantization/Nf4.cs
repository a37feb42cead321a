// NF4 (4-bit NormalFloat) from QLoRA (Dettmers et al. 2023, arXiv:2305.14314), laid out as bitsandbytes
// stores it so our numbers match its kernels:
//   * the 16-value code table is bitsandbytes' get_4bit_type("nf4") (bitsandbytes/functional.py), the
//     normalised quantiles of N(0,1) with an exact zero and an extra positive level;
//   * weights are quantised in blocks of 64 consecutive (flat, row-major) elements: each block stores its
//     absmax, each element the index of the nearest code to x/absmax;
//   * two codes per byte, the element with the even flat index in the high nibble (bitsandbytes'
//     kQuantizeBlockwise: qvals[j] = q(v[2j]) << 4 | q(v[2j+1]));
//   * double quantisation ("compress_statistics"): the fp32 absmaxes minus their mean are quantised again
//     to 8 bits in blocks of 256 with bitsandbytes' signed dynamic map (create_dynamic_map), keeping one
//     fp32 absmax per 256 scales and the mean as an offset.
namespace InstructTune.Engine.Quantization;

/// <summary>NF4 constants and the scalar quantiser shared by <see cref="Nf4Matrix"/> and the GEMM packers.</summary>
public static class Nf4
{
    /// <summary>Weights per absmax block.</summary>
    public const int BlockSize = 64;

    /// <summary>Block scales per second-level (double quantisation) block.</summary>
    public const int ScaleBlockSize = 256;

    // bitsandbytes get_4bit_type("nf4"): ascending, index 7 is exactly 0, index 15 exactly 1.
    internal static readonly float[] Code =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>The 16 NF4 levels, ascending.</summary>
    public static ReadOnlySpan<float> CodeTable => Code;

    /// <summary>The 256-entry signed dynamic 8-bit map used for the double-quantised scales, ascending.</summary>
    public static ReadOnlySpan<float> DynamicMap => Dynamic;

    internal static readonly float[] Dynamic = CreateDynamicMap();

    /// <summary>Index of the NF4 level nearest to x (x normalised to [-1, 1]); halfway goes up, as the
    /// bitsandbytes decision tree (thresholds at the midpoints, compared with &gt;) does.</summary>
    public static int QuantizeValue(float x)
    {
        int q = 0;
        for (int i = 1; i < 16; i++)
            if (x > 0.5f * (Code[i - 1] + Code[i])) q = i;
        return q;
    }

    /// <summary>Index of the dynamic-map entry nearest to x (binary search over the sorted map; ties go up).</summary>
    internal static int QuantizeDynamic(float x)
    {
        int lo = 0, hi = Dynamic.Length - 1;
        if (x <= Dynamic[lo]) return lo;
        if (x >= Dynamic[hi]) return hi;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (Dynamic[mid] <= x) lo = mid; else hi = mid;
        }
        return x - Dynamic[lo] < Dynamic[hi] - x ? lo : hi;
    }

    /// <summary>
    /// bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for exponent
    /// i = 0..6, 2^i fraction levels at the midpoints of linspace(0.1, 1, 2^i + 1), scaled by 10^(i-6),
    /// with both signs; plus 0 and 1; sorted. 2·127 + 2 = 256 values.
    /// </summary>
    private static float[] CreateDynamicMap()
    {
        var data = new List<float>(256);
        for (int i = 0; i < 7; i++)
        {
            int items = (1 << i) + 1;
            for (int t = 0; t + 1 < items; t++)
            {
                float b0 = (float)(0.1 + 0.9 * t / (items - 1)), b1 = (float)(0.1 + 0.9 * (t + 1) / (items - 1));
                float mean = (b0 + b1) / 2f;
                float v = (float)(Math.Pow(10, i - 6) * mean);
                data.Add(v);
                data.Add(-v);
            }
        }
        data.Add(0f);
        data.Add(1f);
        data.Sort();
        return [.. data];
    }
}
