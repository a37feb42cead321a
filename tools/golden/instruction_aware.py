#!/usr/bin/env python3
"""Writes tests/fixtures/instruction_aware/<variant>.json: logits, loss and the gradient of every new parameter
(and of model.embed_tokens.weight) of a tiny Llama (engine_llama.py's PyTorch decoder) with issue 15's
instruction-aware variants, written here from their formulas (docs/ARCHITECTURE.md "Instruction-aware model variants"):

  segments: x_t = embed(id_t) + E_seg[segment_t],  E_seg (4, D)
  gates:    after decoder layer L: c_t = mean of x_j over j <= t in t's document with segment_j == 1 (instruction),
            0 when there is none yet; x = x + sigmoid(x W_h^T + b + c W_c^T) * (s * c)
  both:     the two together.
  biased:   instruction-biased attention, per layer l and head h: s_ij = q_i.k_j / sqrt(hd) + beta_lh * [segment_j == 1]
            (added inside the usual causal / document / padding mask).
  temperature: the temperature head on the pooled instruction representation p_d = mean of the final normed hidden
            states over document d's instruction tokens: tau_d = softplus(w . p_d + b); the loss is the response
            cross-entropy + MU * sum over documents with a target of (tau_d - target_d)^2 / (documents with a target);
            documents (row 0 doc 0, row 0 doc 1, row 1) have targets TEMPERATURE_TARGETS (None: no target).
  two_stream (two_stream_layers K = 1) and all (segments + gates + two_stream with K = 2):
            the instruction stream: each row's instruction tokens (segment 1, not padding) in order, with their
            own positions and document ids, run alone through the base model's decoder layers 0..K-1 (the same
            weights; causal, documents apart); u_j = that stream's output at instruction token j; c_t = mean of u_j
            over instruction tokens j <= t of t's document (0 before the first); the fused input embedding
            x_t = x_t + x_t W_x^T + c_t W_c^T + b_f  (concat [x; c] -> linear, stored as its difference from [I | 0]).
  instruction_embedding: a separate (V, D) table E_i for instruction tokens: x_t = E_i[id_t] where segment_t == 1,
            embed(id_t) elsewhere (before the segment embedding); E_i = the base table + 0.25 u (away from its copy init).
  cot (cot_width r = 8, with gates): after the last decoder layer (and its gate), before the final norm,
            h = h + sum_k act_k(h W_k^T + b_k) W_o,k^T, act = silu, gelu (erf), tanh.

The batch packs two documents into row 0 (document ids, block-diagonal causal mask) and pads row 1, so the
instruction mean must restart per document and skip padding. New parameters are away from their identity init:
hash_uniform of their names (values stored in the fixture). Run: /usr/bin/python3 tools/golden/instruction_aware.py
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import hash_uniform, t2j, write_json  # noqa: E402
from engine_llama import attention_mask, decoder_layer, fnv1a64, forward, init_param, param_shapes, rope_tables  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "instruction_aware")
TINY = {"vocab": 96, "dim": 32, "layers": 2, "heads": 4, "kv": 2, "ffn": 48, "eps": 1e-6, "theta": 10000.0,
        "qkv_bias": True}
GATES = [0, 1]
TWO_STREAM = {"two_stream": 1, "all": 2}
TEMPERATURE_TARGETS = [0.2, None, 1.0]
MU = 0.7
COT = 8


def u(name, shape):
    return torch.tensor(hash_uniform(fnv1a64(name), int(np.prod(shape))).reshape(shape))


def batch(variant):
    g = torch.Generator().manual_seed(15)
    B, T = 2, 9
    ids = torch.randint(0, TINY["vocab"], (B, T), generator=g)
    seg = torch.tensor([[0, 1, 1, 2, 3, 3, 1, 3, 3],
                        [0, 1, 1, 1, 2, 2, 3, 3, 0]])
    if variant in TWO_STREAM:   # row 1 with fewer instruction tokens: the instruction stream has a padded row
        seg[1] = torch.tensor([0, 2, 1, 1, 2, 2, 3, 3, 0])
    doc = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1, 1],
                        [0, 0, 0, 0, 0, 0, 0, 0, -1]])
    pos = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 1, 2],
                        [0, 1, 2, 3, 4, 5, 6, 7, 0]])
    labels = ids.clone()
    labels[seg != 3] = -100
    labels[0, 6] = -100
    labels[1, 8] = -100
    return ids, seg, doc, pos, labels


def causal_instruction_mean(x, seg, doc):
    """c[b, t] = mean of x[b, j] over j <= t, doc[b, j] == doc[b, t], seg[b, j] == 1 (padding excluded); 0 if none."""
    B, T, D = x.shape
    rows = []
    for b in range(B):
        out = []
        for t in range(T):
            sel = [j for j in range(t + 1) if doc[b, j] == doc[b, t] and doc[b, j] >= 0 and seg[b, j] == 1]
            out.append(torch.stack([x[b, j] for j in sel]).mean(0) if sel else torch.zeros(D))
        rows.append(torch.stack(out))
    return torch.stack(rows)


def params(variant):
    D = TINY["dim"]
    A = {}
    if variant in ("segments", "both", "all"):
        A["instruction_aware.segment_embeddings.weight"] = 0.5 * u("instruction_aware.segment_embeddings.weight", (4, D))
    if variant == "instruction_embedding":
        n = "instruction_aware.instruction_embedding.weight"
        A[n] = init_param("model.embed_tokens.weight", (TINY["vocab"], D)) + 0.25 * u(n, (TINY["vocab"], D))
    if variant == "temperature":
        n = "instruction_aware.temperature_head."
        A[n + "weight"] = u(n + "weight", (1, D))
        A[n + "bias"] = u(n + "bias", (1,)) + 0.5
    if variant == "biased":
        for l in range(TINY["layers"]):
            n = f"instruction_aware.attention_bias.{l}"
            A[n] = 2.0 * u(n, (TINY["heads"],))
    if variant in TWO_STREAM:
        p = "instruction_aware.fusion."
        A[p + "x_proj.weight"] = 0.5 * u(p + "x_proj.weight", (D, D)) / math.sqrt(D)
        A[p + "c_proj.weight"] = u(p + "c_proj.weight", (D, D)) / math.sqrt(D)
        A[p + "bias"] = 0.1 * u(p + "bias", (D,))
    if variant == "cot":
        for k in (1, 2, 3):
            p = f"instruction_aware.cot.path{k}."
            A[p + "weight"] = u(p + "weight", (COT, D)) / math.sqrt(D)
            A[p + "bias"] = 0.1 * u(p + "bias", (COT,))
            A[f"instruction_aware.cot.out_{k}.weight"] = u(f"instruction_aware.cot.out_{k}.weight", (D, COT)) / math.sqrt(COT)
    if variant in ("gates", "both", "all", "cot"):
        for l in GATES:
            p = f"instruction_aware.gates.{l}."
            A[p + "gate_h.weight"] = u(p + "gate_h.weight", (D, D)) / math.sqrt(D)
            A[p + "gate_c.weight"] = u(p + "gate_c.weight", (D, D)) / math.sqrt(D)
            A[p + "gate.bias"] = 0.5 * u(p + "gate.bias", (D,)) - 1.0
            A[p + "scale"] = u(p + "scale", (D,))
    return A


def instruction_stream(P, x, seg, doc, pos, K):
    """u (B, T, D): decoder layers 0..K-1 run over each row's instruction tokens alone (zeros elsewhere)."""
    B, T, D = x.shape
    rows = [[t for t in range(T) if seg[b, t] == 1 and doc[b, t] >= 0] for b in range(B)]
    Ti = max(1, max(len(r) for r in rows))
    xe = torch.zeros(B, Ti, D)
    pe = torch.zeros(B, Ti, dtype=torch.long)
    de = torch.full((B, Ti), -1, dtype=torch.long)
    ve = torch.zeros(B, Ti, dtype=torch.long)
    for b, r in enumerate(rows):
        for k, t in enumerate(r):
            xe[b, k] = x[b, t]
            pe[b, k], de[b, k], ve[b, k] = pos[b, t], doc[b, t], 1
    cos, sin = rope_tables(TINY, pe)
    mask = attention_mask(TINY, B, Ti, ve, de)
    for l in range(K):
        xe = decoder_layer(TINY, P, l, xe, cos, sin, mask)
    out = torch.zeros(B, T, D)
    for b, r in enumerate(rows):
        for k, t in enumerate(r):
            out[b, t] = xe[b, k]
    return out


def run(variant):
    P = {n: init_param(n, s) for n, s in param_shapes(TINY)}
    # Two-stream: the instruction stream shares layer 0's weights, so their gradients are checked too.
    shared = ["model.embed_tokens.weight"] + (["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"]
                                              if variant in TWO_STREAM else [])
    for n in shared:
        P[n].requires_grad_(True)
    A = {k: v.clone().requires_grad_(True) for k, v in params(variant).items()}
    ids, seg, doc, pos, labels = batch(variant)
    valid = (doc >= 0).long()

    def embed_hook(x):
        Ei = A.get("instruction_aware.instruction_embedding.weight")
        if Ei is not None:
            x = torch.where((seg == 1)[..., None], Ei[ids], x)
        E = A.get("instruction_aware.segment_embeddings.weight")
        x = x if E is None else x + E[seg]
        if variant not in TWO_STREAM:
            return x
        f = "instruction_aware.fusion."
        c = causal_instruction_mean(instruction_stream(P, x, seg, doc, pos, TWO_STREAM[variant]), seg, doc)
        return x + x @ A[f + "x_proj.weight"].T + c @ A[f + "c_proj.weight"].T + A[f + "bias"]

    def after_layer(l, x):
        p = f"instruction_aware.gates.{l}."
        if p + "scale" in A:
            c = causal_instruction_mean(x, seg, doc)
            z = x @ A[p + "gate_h.weight"].T + A[p + "gate.bias"] + c @ A[p + "gate_c.weight"].T
            x = x + torch.sigmoid(z) * (A[p + "scale"] * c)
        if l == TINY["layers"] - 1 and "instruction_aware.cot.out_1.weight" in A:
            y = 0
            for k, act in zip((1, 2, 3), (F.silu, F.gelu, torch.tanh)):
                q = f"instruction_aware.cot.path{k}."
                y = y + act(x @ A[q + "weight"].T + A[q + "bias"]) @ A[f"instruction_aware.cot.out_{k}.weight"].T
            x = x + y
        return x

    def score_bias(l):
        beta = A.get(f"instruction_aware.attention_bias.{l}")
        return None if beta is None else beta[None, :, None, None] * (seg == 1).float()[:, None, None, :]

    final = {}

    def final_hook(x):
        final["x"] = x

    logits, loss = forward(TINY, P, ids, pos, labels, key_valid=valid, doc=doc, embed_hook=embed_hook, after_layer=after_layer,
                           score_bias=score_bias, final_hook=final_hook)
    extra = {}
    if variant == "temperature":
        x = final["x"]
        docs = [(b, d) for b in range(x.shape[0]) for d in sorted(set(doc[b].tolist())) if d >= 0]
        taus = []
        for b, d in docs:
            rows = [t for t in range(x.shape[1]) if doc[b, t] == d and seg[b, t] == 1]
            p = torch.stack([x[b, t] for t in rows]).mean(0)
            taus.append(F.softplus(p @ A["instruction_aware.temperature_head.weight"][0] + A["instruction_aware.temperature_head.bias"][0]))
        sq = [(tau - t) ** 2 for tau, t in zip(taus, TEMPERATURE_TARGETS) if t is not None]
        loss = loss + MU * torch.stack(sq).sum() / len(sq)
        extra = {"temperatures": [float(t) for t in taus], "targets": TEMPERATURE_TARGETS, "mu": MU}
    loss.backward()
    grads = dict(A)
    for n in shared:
        grads[n] = P[n]
    write_json(os.path.join(OUT, f"{variant}.json"), {
        "config": TINY, "gate_layers": GATES if variant in ("gates", "both", "all", "cot") else [],
        "cot_width": COT if variant == "cot" else 0,
        "two_stream_layers": TWO_STREAM.get(variant, 0),
        "ids": t2j(ids), "segments": t2j(seg), "documents": t2j(doc), "positions": t2j(pos), "labels": t2j(labels),
        "loss": float(loss), "logits": t2j(logits), **extra,
        "params": [{"name": k, **t2j(v)} for k, v in A.items()],
        "grads": [{"name": k, **t2j(v.grad)} for k, v in grads.items()],
    })


def main():
    os.makedirs(OUT, exist_ok=True)
    for v in sys.argv[1:] or ("segments", "gates", "both", "two_stream", "all", "biased", "cot", "temperature",
                                      "instruction_embedding"):
        run(v)
        print("wrote", v)


if __name__ == "__main__":
    main()
