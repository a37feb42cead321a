#!/usr/bin/env python3
"""Writes tests/fixtures/peft/ipeft.json: iPEFT (instruction-gated low-rank adapters, issue 16; C#: src/InstructTune/
Peft/Ipeft) on a tiny Llama, written out here from the method's formulas:

  r_t   = mean of the token embeddings x0_j over the instruction tokens j ≤ t of the row (segment id 1); 0 if none
          (the frozen base's instruction representation; for response tokens the mean over the whole instruction).
  g_l,t = tanh(r_t · w_l + b_l)                     one gate per decoder layer and token
  y     = F.linear(x, W, b) + g_l,t · (alpha/r) · B(A(x))   on q_proj and v_proj

Logits, loss and the gradient of every iPEFT parameter (A, B, w_l, b_l) for parameters away from init.
Base weights are engine_llama.py's hash_uniform init (recomputed by the C# test).
Run: /usr/bin/python3 tools/golden/ipeft.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import t2j, write_json  # noqa: E402
from engine_llama import forward, init_param, param_shapes  # noqa: E402
from peft_methods import TINY, u  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "peft")
R, ALPHA = 4, 8.0
TARGETS = ["self_attn.q_proj", "self_attn.v_proj"]


def main():
    P = {n: init_param(n, s) for n, s in param_shapes(TINY)}
    g = torch.Generator().manual_seed(7)
    B, T, D = 2, 9, TINY["dim"]
    ids = torch.randint(0, TINY["vocab"], (B, T), generator=g)
    seg = torch.tensor([[0, 1, 1, 1, 2, 3, 3, 3, 3], [1, 1, 0, 2, 1, 3, 3, 3, 3]])
    labels = ids.clone()
    labels[seg != 3] = -100
    A = {}
    for l in range(TINY["layers"]):
        A[f"ipeft_gate.weight_{l}"] = 0.5 * u(f"ipeft_gate.weight_{l}", (1, D))
        A[f"ipeft_gate.bias_{l}"] = 0.1 * u(f"ipeft_gate.bias_{l}", (1,))
        for t in TARGETS:
            mod = f"model.layers.{l}.{t}"
            out, inn = P[mod + ".weight"].shape
            A[mod + ".ipeft_A.weight"] = u(mod + ".ipeft_A.weight", (R, inn)) / inn ** 0.5
            A[mod + ".ipeft_B.weight"] = u(mod + ".ipeft_B.weight", (out, R)) / R ** 0.5
    A = {k: v.clone().requires_grad_(True) for k, v in A.items()}

    x0 = F.embedding(ids, P["model.embed_tokens.weight"])               # (B, T, D)
    sel = (seg == 1).float()[..., None]
    r = torch.cumsum(x0 * sel, dim=1) / torch.cumsum(sel, dim=1).clamp(min=1)   # causal instruction mean (0 before any)
    gates = [torch.tanh(r @ A[f"ipeft_gate.weight_{l}"].T + A[f"ipeft_gate.bias_{l}"]) for l in range(TINY["layers"])]

    def lin(x, name, P_):
        if not any(name.endswith(t) for t in TARGETS):
            return None
        l = int(name.split(".")[2])
        d = (ALPHA / R) * F.linear(F.linear(x, A[name + ".ipeft_A.weight"]), A[name + ".ipeft_B.weight"])
        return F.linear(x, P_[name + ".weight"], P_.get(name + ".bias")) + gates[l] * d

    pos = torch.arange(T)[None].expand(B, T).contiguous()
    logits, loss = forward(TINY, P, ids, pos, labels, lin_adapter=lin)
    loss.backward()
    write_json(os.path.join(OUT, "ipeft.json"), {
        "config": TINY, "rank": R, "alpha": ALPHA, "ids": t2j(ids), "labels": t2j(labels), "segments": t2j(seg),
        "loss": float(loss), "logits": t2j(logits),
        "params": [{"name": k, **t2j(v)} for k, v in A.items()],
        "grads": [{"name": k, **t2j(v.grad)} for k, v in A.items()],
    })


if __name__ == "__main__":
    main()
