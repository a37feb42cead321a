#!/usr/bin/python3
"""NF4 golden fixtures for tests/InstructTune.Engine.Tests/Quantization/Nf4Tests.cs.

Writes tests/fixtures/quant/:
  nf4_meta.json      shape, the published NF4 table, the table re-derived from N(0,1) quantiles, the signed
                     dynamic 8-bit map, the double-quantisation offset
  nf4_input.f32      the weight matrix (float32 little-endian, row-major)
  nf4_codes.u8       packed 4-bit codes (even flat index in the high nibble)
  nf4_absmax.f32     first-level block absmax (blocks of 64)
  nf4_qscales.u8     8-bit dynamic-map indices of (absmax - mean), blocks of 256
  nf4_absmax2.f32    second-level absmax per block of 256 scales
  nf4_dequant.f32    code[q] * (dynamic[qs] * absmax2 + offset), the dequantised matrix

An independent numpy implementation written from the QLoRA paper (Dettmers et al. 2023, arXiv:2305.14314,
section 3 "4-bit NormalFloat" and "Double Quantization") and the bitsandbytes functional.py description
(create_normal_map, create_dynamic_map, quantize_4bit with compress_statistics). Run: /usr/bin/python3 tools/golden/nf4_golden.py
"""
import json
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "quant")

# The constants bitsandbytes publishes in get_4bit_type("nf4").
PUBLISHED_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                 -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                 0.7229568362236023, 1.0]


def derived_nf4(offset=0.9677083):
    """Paper's construction: 8 positive and 7 negative quantiles of N(0,1) between `offset` and 0.5,
    plus an exact zero, normalised to [-1, 1] (asymmetric: one more positive level)."""
    pos = torch.special.ndtri(torch.linspace(offset, 0.5, 9)[:-1]).double().numpy()
    neg = -torch.special.ndtri(torch.linspace(offset, 0.5, 8)[:-1]).double().numpy()
    v = np.sort(np.concatenate([pos, [0.0], neg]))
    return v / v.max()


def dynamic_map():
    """Signed dynamic 8-bit type: for exponent i = 0..6, 2^i fraction levels at midpoints of
    linspace(0.1, 1, 2^i + 1) scaled by 10^(i-6), both signs, plus 0 and 1."""
    data = []
    for i in range(7):
        b = np.linspace(0.1, 1.0, 2 ** i + 1)
        means = (b[:-1] + b[1:]) / 2.0
        data += list(10.0 ** (i - 6) * means) + list(-(10.0 ** (i - 6)) * means)
    data += [0.0, 1.0]
    assert len(data) == 256
    return np.sort(np.array(data, dtype=np.float32))


def nearest(x, table):
    return np.abs(x[:, None].astype(np.float64) - table[None, :].astype(np.float64)).argmin(axis=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(1234)
    rows, cols = 64, 300  # 19200 weights: 300 blocks of 64 (crossing rows), 2 second-level blocks
    w = (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)
    w[3, :] *= 10.0  # an outlier row: blocks with very different absmax
    flat = w.reshape(-1)
    code = np.array(PUBLISHED_NF4, dtype=np.float32)
    derived = derived_nf4()
    assert np.allclose(derived, code, atol=2e-7), (derived, code)

    blocks = flat.reshape(-1, 64)
    absmax = np.abs(blocks).max(axis=1).astype(np.float32)
    normed = (blocks * (np.float32(1.0) / absmax)[:, None]).astype(np.float32).reshape(-1)
    q = nearest(normed, code).astype(np.uint8)
    packed = ((q[0::2] << 4) | q[1::2]).astype(np.uint8)

    dyn = dynamic_map()
    offset = np.float32(absmax.astype(np.float64).mean())
    centred = (absmax - offset).astype(np.float32)
    nb2 = (len(centred) + 255) // 256
    qs = np.zeros(len(centred), dtype=np.uint8)
    absmax2 = np.zeros(nb2, dtype=np.float32)
    for b in range(nb2):
        seg = centred[b * 256:(b + 1) * 256]
        m = np.float32(np.abs(seg).max())
        absmax2[b] = m
        qs[b * 256:(b + 1) * 256] = nearest((seg / m).astype(np.float32), dyn)
    scales = (dyn[qs] * np.repeat(absmax2, 256)[:len(qs)] + offset).astype(np.float32)
    deq = (code[q].reshape(-1, 64) * scales[:, None]).astype(np.float32).reshape(-1)

    w.tofile(os.path.join(OUT, "nf4_input.f32"))
    packed.tofile(os.path.join(OUT, "nf4_codes.u8"))
    absmax.tofile(os.path.join(OUT, "nf4_absmax.f32"))
    qs.tofile(os.path.join(OUT, "nf4_qscales.u8"))
    absmax2.tofile(os.path.join(OUT, "nf4_absmax2.f32"))
    deq.tofile(os.path.join(OUT, "nf4_dequant.f32"))
    with open(os.path.join(OUT, "nf4_meta.json"), "w") as f:
        json.dump({"rows": rows, "cols": cols, "offset": float(offset), "published_nf4": PUBLISHED_NF4,
                   "derived_nf4": derived.tolist(), "dynamic_map": dyn.astype(np.float64).tolist()}, f, indent=1)
    print("wrote", OUT, "max |w - deq| =", float(np.abs(flat - deq).max()))


if __name__ == "__main__":
    main()
