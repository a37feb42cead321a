#!/usr/bin/env python3
"""Writes tests/fixtures/peft/<method>.json: logits, loss and the gradient of every adapter parameter of a tiny
Llama (engine_llama.py's PyTorch decoder) with one PEFT method applied, each written out here from PEFT's formulas
(huggingface/peft src/peft/tuners/...; described, not copied):

  dora  (tuners/lora/dora.py, DoraLinearLayer): on every projection, with scale = lora_alpha / r,
        norm = ‖W + scale·B·A‖ over dim 1 (per output row), detached; g = m / norm;
        y = F.linear(x, W, b) + (g − 1)·F.linear(x, W) + g·scale·B(A(x)).
  ia3   (tuners/ia3/layer.py, Linear): k_proj, v_proj: y = F.linear(x, W, b)·l (l of shape (out, 1), bias scaled
        too); down_proj (feedforward_modules): y = F.linear(x·l, W, b) (l of shape (1, in)).

Base weights are engine_llama.py's hash_uniform init (recomputed by the C# test); adapter values are hash_uniform
of their PEFT module name (rules below, mirrored in tests/.../Peft/PeftGoldenTests.cs), so fixtures hold outputs only.
Run: /usr/bin/python3 tools/golden/peft_methods.py
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import hash_uniform, t2j, write_json  # noqa: E402
from engine_llama import fnv1a64, forward, init_param, param_shapes  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "peft")
TINY = {"vocab": 96, "dim": 32, "layers": 2, "heads": 4, "kv": 2, "ffn": 48, "eps": 1e-6, "theta": 10000.0,
        "qkv_bias": True}
PROJ = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
R, ALPHA = 4, 8.0


def u(name, shape):
    return torch.tensor(hash_uniform(fnv1a64(name), int(np.prod(shape))).reshape(shape))


def dora_params(P):
    """A = u/√in, B = 0.1·u, m = ‖W + scale·B·A‖_row · (1 + 0.2·u): a DoRA adapter away from its identity init."""
    scale = ALPHA / R
    A = {}
    for l in range(TINY["layers"]):
        for proj in PROJ:
            mod = f"model.layers.{l}.{proj}"
            W = P[mod + ".weight"].detach()
            out, inn = W.shape
            a = u(mod + ".lora_A.weight", (R, inn)) / math.sqrt(inn)
            b = u(mod + ".lora_B.weight", (out, R)) * 0.1
            norm = (W + scale * b @ a).norm(dim=1)
            m = norm * (1 + 0.2 * u(mod + ".lora_magnitude_vector", (out,)))
            A[mod + ".lora_A.weight"], A[mod + ".lora_B.weight"], A[mod + ".lora_magnitude_vector"] = a, b, m
    return A


def dora_lin(A):
    scale = ALPHA / R

    def lin(x, name, P):
        a, b, m = A[name + ".lora_A.weight"], A[name + ".lora_B.weight"], A[name + ".lora_magnitude_vector"]
        W, bias = P[name + ".weight"], P.get(name + ".bias")
        norm = (W + scale * (b @ a).detach()).norm(dim=1).detach()
        g = (m / norm).view(1, -1)
        return F.linear(x, W, bias) + (g - 1) * F.linear(x, W) + g * F.linear(F.linear(x, a), b) * scale
    return lin


IA3_TARGETS = ["self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj"]
IA3_FF = ["mlp.down_proj"]


def ia3_params(P):
    """l = 1 + 0.3·u of shape (out, 1), or (1, in) for feedforward modules."""
    A = {}
    for l in range(TINY["layers"]):
        for proj in IA3_TARGETS:
            mod = f"model.layers.{l}.{proj}"
            out, inn = P[mod + ".weight"].shape
            shape = (1, inn) if proj in IA3_FF else (out, 1)
            A[mod + ".ia3_l"] = 1 + 0.3 * u(mod + ".ia3_l", shape)
    return A


def ia3_lin(A):
    def lin(x, name, P):
        if name + ".ia3_l" not in A:
            return None
        l = A[name + ".ia3_l"].flatten()
        W, bias = P[name + ".weight"], P.get(name + ".bias")
        if any(name.endswith(f) for f in IA3_FF):
            return F.linear(x * l, W, bias)
        return F.linear(x, W, bias) * l
    return lin


def batch():
    g = torch.Generator().manual_seed(5)
    B, T = 2, 9
    ids = torch.randint(0, TINY["vocab"], (B, T), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100
    pos = torch.arange(T)[None].expand(B, T).contiguous()
    return ids, labels, pos


def run(method, make_params, make_lin):
    P = {n: init_param(n, s) for n, s in param_shapes(TINY)}
    A = {k: v.clone().requires_grad_(True) for k, v in make_params(P).items()}
    ids, labels, pos = batch()
    logits, loss = forward(TINY, P, ids, pos, labels, lin_adapter=make_lin(A))
    loss.backward()
    write_json(os.path.join(OUT, f"{method}.json"), {
        "config": TINY, "ids": t2j(ids), "labels": t2j(labels), "loss": float(loss), "logits": t2j(logits),
        "params": [{"name": k, **t2j(v)} for k, v in A.items()],
        "grads": [{"name": k, **t2j(v.grad)} for k, v in A.items()],
    })


def main():
    os.makedirs(OUT, exist_ok=True)
    run("dora", dora_params, dora_lin)
    run("ia3", ia3_params, ia3_lin)


if __name__ == "__main__":
    main()
