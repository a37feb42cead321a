#!/usr/bin/env python3
"""Writes tests/fixtures/peft/iapt.json: IAPT (instruction-aware prompt tuning, Zhu et al. ACL 2024, arXiv 2405.18203;
issue 16; C#: src/InstructTune/Peft/Iapt) on a tiny Llama, written out here from the method's formulas as InstructTune
builds them (docs/ARCHITECTURE.md lists where they depart from the paper):

  r       = mean of the token embeddings over the example's instruction tokens (segment id 1); 0 if none
  z_l     = W_up,l · act(W_down,l · r + b_down,l) + b_up,l          act = gelu (exact), bottleneck m
            viewed (P, 2, kv, hd): prompt p's key (not rotated), then its value
  a_l     = causal attention of the layer (unchanged)
          + gate_l ⊙ softmax_p(q_t · k_p / √hd) · v_p               q_t the rotated query; per head, GQA
  then o_proj as usual.

Logits, loss and the gradient of every IAPT parameter (down, up, gate per layer) for parameters away from init.
Base weights are engine_llama.py's hash_uniform init (recomputed by the C# test).
Run: /usr/bin/python3 tools/golden/iapt.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import t2j, write_json  # noqa: E402
from engine_llama import forward, init_param, param_shapes  # noqa: E402
from engine_ops import inv_freq_hf, rotate_half  # noqa: E402
from peft_methods import TINY, u  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "peft")
P_V, M = 4, 6


def main():
    P = {n: init_param(n, s) for n, s in param_shapes(TINY)}
    g = torch.Generator().manual_seed(11)
    B, T, D = 2, 9, TINY["dim"]
    H, KV, L = TINY["heads"], TINY["kv"], TINY["layers"]
    hd = D // H
    ids = torch.randint(0, TINY["vocab"], (B, T), generator=g)
    seg = torch.tensor([[0, 1, 1, 1, 2, 3, 3, 3, 3], [1, 1, 0, 2, 1, 3, 3, 3, 3]])
    labels = ids.clone()
    labels[seg != 3] = -100
    A = {}
    for l in range(L):
        n = f"iapt_generator.down_{l}"
        A[n + ".weight"] = u(n + ".weight", (M, D)) / math.sqrt(D)
        A[n + ".bias"] = 0.1 * u(n + ".bias", (M,))
        n = f"iapt_generator.up_{l}"
        A[n + ".weight"] = u(n + ".weight", (P_V * 2 * KV * hd, M)) / math.sqrt(M)
        A[n + ".bias"] = 0.1 * u(n + ".bias", (P_V * 2 * KV * hd,))
        A[f"iapt_generator.gate_{l}"] = 0.5 * u(f"iapt_generator.gate_{l}", (H * hd,))
    A = {k: v.clone().requires_grad_(True) for k, v in A.items()}

    x0 = F.embedding(ids, P["model.embed_tokens.weight"])                       # (B, T, D)
    sel = (seg == 1).float()[..., None]
    r = (x0 * sel).sum(1) / sel.sum(1).clamp(min=1)                             # (B, D): one example per row
    prompts = []
    for l in range(L):
        h = F.gelu(F.linear(r, A[f"iapt_generator.down_{l}.weight"], A[f"iapt_generator.down_{l}.bias"]))
        z = F.linear(h, A[f"iapt_generator.up_{l}.weight"], A[f"iapt_generator.up_{l}.bias"]).view(B, P_V, 2, KV, hd)
        k = z[:, :, 0].permute(0, 2, 1, 3).repeat_interleave(H // KV, dim=1)   # (B, H, P, hd)
        v = z[:, :, 1].permute(0, 2, 1, 3).repeat_interleave(H // KV, dim=1)
        prompts.append((k, v))

    pos = torch.arange(T)[None].expand(B, T).contiguous()
    inv = inv_freq_hf(hd, TINY["theta"], TINY.get("scaling"))
    freqs = (inv[None, :, None] @ pos[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]                           # (B, 1, T, hd)
    queries = {}

    def lin(x, name, P_):
        l = int(name.split(".")[2])
        if name.endswith("self_attn.q_proj"):
            q = F.linear(x, P_[name + ".weight"], P_.get(name + ".bias")).view(B, T, H, hd).transpose(1, 2)
            queries[l] = q * cos + rotate_half(q) * sin                          # the rotated queries the layer uses
            return None
        if name.endswith("self_attn.o_proj"):
            k, v = prompts[l]
            s = queries[l] @ k.transpose(2, 3) / math.sqrt(hd)                   # (B, H, T, P): no mask
            a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
            return F.linear(x + A[f"iapt_generator.gate_{l}"] * a, P_[name + ".weight"], P_.get(name + ".bias"))
        return None

    logits, loss = forward(TINY, P, ids, pos, labels, lin_adapter=lin)
    loss.backward()
    write_json(os.path.join(OUT, "iapt.json"), {
        "config": TINY, "num_virtual_tokens": P_V, "bottleneck": M, "activation": "gelu",
        "ids": t2j(ids), "labels": t2j(labels), "segments": t2j(seg),
        "loss": float(loss), "logits": t2j(logits),
        "params": [{"name": k, **t2j(v)} for k, v in A.items()],
        "grads": [{"name": k, **t2j(v.grad)} for k, v in A.items()],
    })


if __name__ == "__main__":
    main()
