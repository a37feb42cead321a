#!/usr/bin/env python3
"""Writes tests/fixtures/peft/iasft.json: IaSFT's diagonal Fisher and top-k masks on a tiny Llama, computed
independently in PyTorch from the method's formulas (issue 16; the C# side is src/InstructTune/Peft/Iasft):

  Fisher   F[W] = (1/N) · Σ_{n=1..N} (∂L_n/∂W)²  for every q/k/v/o/gate/up/down weight W, L_n the mean response
           cross-entropy of batch n (labels −100 elsewhere) at the base weights.
  top-k    k = ⌈fraction · n⌉ (≥ 1) per tensor (n = W's size) or over all tensors together (global); entries ordered by
           F descending, ties by (tensor order, flat row-major index) ascending; the first k are the mask.
  forward  with a sparse delta S at the per-tensor mask: every projection computes F.linear(x, W + S, b); the
           fixture holds logits, loss and ∂L/∂S at the mask (the delta's gradient) for S = 0.05·u(name).

The script checks that the k-th and (k+1)-th Fisher values differ by more than 1e-3 relative in every selection,
so float rounding in another implementation cannot move the threshold (the test compares the masks exactly).
Base weights are engine_llama.py's hash_uniform init (recomputed by the C# test).
Run: /usr/bin/python3 tools/golden/iasft_fisher.py
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
from peft_methods import PROJ, TINY  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "peft")
FRACTION_PER_TENSOR, FRACTION_GLOBAL, BATCHES = 0.02, 0.01, 3


def batches():
    out = []
    for n in range(BATCHES):
        g = torch.Generator().manual_seed(100 + n)
        B, T = 2, 9
        ids = torch.randint(0, TINY["vocab"], (B, T), generator=g)
        labels = ids.clone()
        labels[:, : 3 + n] = -100          # the prompt: no loss
        out.append((ids, labels))
    return out


def topk(fishers, k):
    """Indices per tensor of the k largest values, ties by (tensor, index); and the k-th / (k+1)-th values."""
    vals = np.concatenate([f.reshape(-1).numpy().astype(np.float64) for f in fishers])
    tensor = np.concatenate([np.full(f.numel(), i) for i, f in enumerate(fishers)])
    index = np.concatenate([np.arange(f.numel()) for f in fishers])
    order = np.lexsort((index, tensor, -vals))
    chosen = order[:k]
    kth, nxt = vals[order[k - 1]], vals[order[k]] if k < len(vals) else 0.0
    assert (kth - nxt) > 1e-3 * kth, f"threshold too tight: {kth} vs {nxt}"
    res = []
    for i in range(len(fishers)):
        sel = np.sort(index[chosen][tensor[chosen] == i])
        res.append([int(x) for x in sel])
    return res, float(kth), float(nxt)


def main():
    names = [f"model.layers.{l}.{p}" for l in range(TINY["layers"]) for p in PROJ]
    P = {n: init_param(n, s) for n, s in param_shapes(TINY)}
    for n in names:
        P[n + ".weight"].requires_grad_(True)
    data = batches()
    fisher = {n: torch.zeros_like(P[n + ".weight"]) for n in names}
    for ids, labels in data:
        for n in names:
            P[n + ".weight"].grad = None
        B, T = ids.shape
        pos = torch.arange(T)[None].expand(B, T).contiguous()
        _, loss = forward(TINY, P, ids, pos, labels)
        loss.backward()
        for n in names:
            fisher[n] += P[n + ".weight"].grad.detach() ** 2 / BATCHES

    fl = [fisher[n] for n in names]
    per_tensor = []
    for n, f in zip(names, fl):
        k = max(1, math.ceil(FRACTION_PER_TENSOR * f.numel() - 1e-9))
        idx, kth, nxt = topk([f], k)
        per_tensor.append({"name": n, "k": k, "index": idx[0], "fisher": [float(f.reshape(-1)[i]) for i in idx[0]],
                           "kth": kth, "next": nxt})
    kg = max(1, math.ceil(FRACTION_GLOBAL * sum(f.numel() for f in fl) - 1e-9))
    gidx, gkth, gnext = topk(fl, kg)

    # Forward and delta gradient with S at the per-tensor masks.
    S = {}
    for e in per_tensor:
        v = torch.tensor(hash_uniform(fnv1a64(e["name"] + ".iasft_values"), len(e["index"]))) * 0.05
        S[e["name"]] = (torch.tensor(e["index"]), v.clone().requires_grad_(True))
    Pf = {n: t.detach() for n, t in P.items()}

    def lin(x, name, P_):
        if name not in S:
            return None
        idx, v = S[name]
        W = P_[name + ".weight"]
        dense = torch.zeros(W.numel()).index_put((idx,), v).view_as(W)
        return F.linear(x, W + dense, P_.get(name + ".bias"))

    ids, labels = data[0]
    pos = torch.arange(ids.shape[1])[None].expand(ids.shape[0], ids.shape[1]).contiguous()
    logits, loss = forward(TINY, Pf, ids, pos, labels, lin_adapter=lin)
    loss.backward()
    write_json(os.path.join(OUT, "iasft.json"), {
        "config": TINY, "batches": [{"ids": t2j(i), "labels": t2j(l)} for i, l in data],
        "fraction_per_tensor": FRACTION_PER_TENSOR, "fraction_global": FRACTION_GLOBAL,
        "per_tensor": per_tensor,
        "global": {"k": kg, "kth": gkth, "next": gnext, "index": {n: gidx[i] for i, n in enumerate(names)}},
        "delta": {"loss": float(loss), "logits": t2j(logits),
                  "values": {n: [float(x) for x in S[n][1].detach()] for n in names},
                  "grads": {n: [float(x) for x in S[n][1].grad] for n in names}},
    })
    print("per-tensor k:", [e["k"] for e in per_tensor], "global k:", kg,
          "min relative gap:", min([(e["kth"] - e["next"]) / e["kth"] for e in per_tensor] + [(gkth - gnext) / gkth]))


if __name__ == "__main__":
    main()
