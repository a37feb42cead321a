#!/usr/bin/env python3
"""Writes tests/fixtures/engine/ops.json: forward outputs and input gradients of every differentiable engine op,
computed by PyTorch (float32). For each case the probed scalar is sum(out * w) with w saved in the case, so the
input gradients are d/dx of that. Also writes tests/fixtures/engine/bf16.json (float32 bits → torch bf16 bits)
and tests/fixtures/engine/adamw.json (20 torch.optim.AdamW steps on fixed gradients).
Run: /usr/bin/python3 tools/golden/engine_ops.py
"""
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import t2j, write_json  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "engine")
torch.manual_seed(1234)


def case(name, inputs, fn, consts=None, params=None):
    """inputs: dict name → float tensor (requires grad); consts: saved but not differentiated."""
    for t in inputs.values():
        t.requires_grad_(True)
    out = fn(**inputs)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    return {
        "name": name,
        "params": params or {},
        "inputs": {k: t2j(v) for k, v in inputs.items()},
        "consts": {k: t2j(v) for k, v in (consts or {}).items()},
        "w": t2j(w),
        "out": t2j(out),
        "grads": {k: t2j(v.grad) for k, v in inputs.items()},
    }


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def inv_freq_hf(dim, base, scaling=None):
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if scaling is None:
        return inv
    if scaling["type"] == "linear":
        return inv / scaling["factor"]
    # transformers' _compute_llama3_parameters
    factor, low, high, old = scaling["factor"], scaling["low"], scaling["high"], scaling["orig"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    inv_l = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, inv_l)


def cos_sin(pos, dim, base, scaling=None):
    inv = inv_freq_hf(dim, base, scaling)
    freqs = (inv[None, :, None] @ pos[:, None, :].float()).transpose(1, 2)  # (B, T, dim/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def attention_ref(q, k, v, B, T, H, KV, hd, window=0, key_valid=None, doc=None):
    q = q.view(B, T, H, hd).transpose(1, 2)
    k = k.view(B, T, KV, hd).transpose(1, 2).repeat_interleave(H // KV, dim=1)
    v = v.view(B, T, KV, hd).transpose(1, 2).repeat_interleave(H // KV, dim=1)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = (j <= i).expand(B, T, T).clone()
    if window:
        allowed &= (j > i - window)
    if key_valid is not None:
        allowed &= key_valid[:, None, :].bool()
    if doc is not None:
        allowed &= doc[:, :, None] == doc[:, None, :]
    bias = torch.zeros(B, 1, T, T).masked_fill(~allowed[:, None], torch.finfo(torch.float32).min)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd) + bias
    p = torch.softmax(s.float(), dim=-1)
    return (p @ v).transpose(1, 2).reshape(B * T, H * hd)


def ops_cases():
    cases = []
    cases.append(case("linear", {"x": torch.randn(5, 7), "w": torch.randn(3, 7), "b": torch.randn(3)},
                      lambda x, w, b: F.linear(x, w, b)))

    def rms(x, w, eps=1e-5):
        var = x.pow(2).mean(-1, keepdim=True)
        return w * (x * torch.rsqrt(var + eps))
    cases.append(case("rmsnorm", {"x": torch.randn(4, 65), "w": torch.rand(65) + 0.5}, rms, params={"eps": 1e-5}))
    cases.append(case("layernorm", {"x": torch.randn(4, 33), "w": torch.randn(33), "b": torch.randn(33)},
                      lambda x, w, b: F.layer_norm(x, (33,), w, b, 1e-5), params={"eps": 1e-5}))
    cases.append(case("silu", {"x": torch.randn(67) * 3}, lambda x: F.silu(x)))
    cases.append(case("gelu", {"x": torch.randn(67) * 3}, lambda x: F.gelu(x)))
    cases.append(case("gelu_tanh", {"x": torch.randn(67) * 3}, lambda x: F.gelu(x, approximate="tanh")))
    cases.append(case("swiglu", {"g": torch.randn(66) * 3, "u": torch.randn(66)}, lambda g, u: F.silu(g) * u))
    cases.append(case("softmax", {"x": torch.randn(3, 65) * 4}, lambda x: torch.softmax(x, -1)))
    ids = torch.tensor([3, 0, 9, 3, 3, 1])
    cases.append(case("embedding", {"w": torch.randn(10, 6)}, lambda w: F.embedding(ids, w), consts={"ids": ids}))

    # RoPE on (B, T, H, hd) rows with HF cos/sin, for default, linear and llama3 scaling.
    B, T, H, hd = 2, 5, 3, 16
    pos = torch.tensor([[0, 1, 2, 3, 4], [7, 100, 1000, 2047, 5000]])
    for label, scaling, base in [("rope", None, 10000.0), ("rope_linear", {"type": "linear", "factor": 4.0}, 10000.0),
                                 ("rope_llama3", {"type": "llama3", "factor": 8.0, "low": 1.0, "high": 4.0, "orig": 64}, 500000.0)]:
        cos, sin = cos_sin(pos, hd, base, scaling)

        def rope(x, cos=cos, sin=sin):
            xv = x.view(B, T, H, hd)
            y = xv * cos[:, :, None, :] + rotate_half(xv) * sin[:, :, None, :]
            return y.reshape(B * T, H * hd)
        params = {"B": B, "T": T, "H": H, "hd": hd, "theta": base}
        if scaling:
            params.update({"scaling": scaling["type"], "factor": scaling["factor"]})
            if scaling["type"] == "llama3":
                params.update({"low": scaling["low"], "high": scaling["high"], "orig": scaling["orig"]})
        cases.append(case(label, {"x": torch.randn(B * T, H * hd)}, rope, consts={"pos": pos}, params=params))

    # Attention: GQA, causal, sliding window, right padding, packed documents.
    B, T, H, KV, hd = 2, 7, 4, 2, 8
    key_valid = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]])
    doc = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0]])
    for label, window, kvm, dm in [("attention", 0, None, None), ("attention_window", 3, None, None),
                                   ("attention_masks", 0, key_valid, doc)]:
        consts = {}
        if kvm is not None:
            consts = {"key_valid": kvm, "doc": dm}
        cases.append(case(label, {"q": torch.randn(B * T, H * hd), "k": torch.randn(B * T, KV * hd), "v": torch.randn(B * T, KV * hd)},
                          lambda q, k, v, window=window, kvm=kvm, dm=dm: attention_ref(q, k, v, B, T, H, KV, hd, window, kvm, dm),
                          consts=consts, params={"B": B, "T": T, "H": H, "KV": KV, "hd": hd, "window": window}))

    targets = torch.tensor([1, -100, 4, 0, 63, -100])
    for label, sm in [("cross_entropy", 0.0), ("cross_entropy_smooth", 0.1)]:
        cases.append(case(label, {"x": torch.randn(6, 64) * 3},
                          lambda x, sm=sm: F.cross_entropy(x, targets, ignore_index=-100, label_smoothing=sm).reshape(1),
                          consts={"targets": targets}, params={"smoothing": sm}))
    return cases


def bf16_cases():
    bits = [0x3F800000, 0x3F808000, 0x3F818000, 0x3F808001, 0x3F80FFFF, 0x7F7FFFFF, 0x7F7F7FFF, 0x7F7F8000,
            0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC00001, 0xFFC00000, 0x7F800001, 0xFFFFFFFF,
            0x00000001, 0x00008000, 0x00018000, 0x00017FFF, 0x80018000, 0x007FFFFF, 0x00800000, 0x80000000,
            0x00000000, 0x3EAAAAAB, 0xC0490FDB, 0x33800000, 0x4B800001]
    g = torch.Generator().manual_seed(5)
    rnd = (torch.randn(200, generator=g) * torch.exp(torch.randn(200, generator=g) * 10)).tolist()
    bits += [struct.unpack("<I", struct.pack("<f", v))[0] for v in rnd]
    f = torch.tensor([struct.unpack("<f", struct.pack("<I", b))[0] for b in bits], dtype=torch.float32)
    bf = f.to(torch.bfloat16).view(torch.int16).to(torch.int64) & 0xFFFF
    return {"float_bits": bits, "bf16_bits": [int(v) for v in bf.tolist()]}


def adamw_case():
    g = torch.Generator().manual_seed(9)
    p1 = torch.randn(5, 7, generator=g)
    p2 = torch.randn(11, generator=g)
    params = [p1.clone().requires_grad_(True), p2.clone().requires_grad_(True)]
    opt = torch.optim.AdamW([{"params": [params[0]], "weight_decay": 0.1}, {"params": [params[1]], "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    grads, traj = [], []
    for _ in range(20):
        gs = [torch.randn(5, 7, generator=g) * 0.5, torch.randn(11, generator=g) * 2]
        grads.append([t2j(x) for x in gs])
        for p, gr in zip(params, gs):
            p.grad = gr.clone()
        opt.step()
        traj.append([t2j(p) for p in params])
    return {"lr": 3e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": [0.1, 0.0],
            "init": [t2j(p1), t2j(p2)], "grads": grads, "params": traj}


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write_json(os.path.join(OUT, "ops.json"), {"torch": torch.__version__, "cases": ops_cases()})
    write_json(os.path.join(OUT, "bf16.json"), bf16_cases())
    write_json(os.path.join(OUT, "adamw.json"), adamw_case())
