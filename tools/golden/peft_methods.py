#!/usr/bin/env python3
"""Writes tests/fixtures/peft/<method>.json: logits, loss and the gradient of every adapter parameter of a tiny
Llama (engine_llama.py's PyTorch decoder) with one PEFT method applied, each written out here from PEFT's formulas
(huggingface/peft src/peft/tuners/...; described, not copied):

  dora  (tuners/lora/dora.py, DoraLinearLayer): on every projection, with scale = lora_alpha / r,
        norm = ‖W + scale·B·A‖ over dim 1 (per output row), detached; g = m / norm;
        y = F.linear(x, W, b) + (g − 1)·F.linear(x, W) + g·scale·B(A(x)).
  ia3   (tuners/ia3/layer.py, Linear): k_proj, v_proj: y = F.linear(x, W, b)·l (l of shape (out, 1), bias scaled
        too); down_proj (feedforward_modules): y = F.linear(x·l, W, b) (l of shape (1, in)).
  prompt (peft_model.py PeftModelForCausalLM.forward, tuners/prompt_tuning): inputs_embeds = cat(prompt (P, D) per
        sequence, embed(ids)); attention mask prefixed with ones, labels with -100, positions 0..P+T-1 over the longer
        sequence. Logits of the real tokens (the C# model returns only those) and the loss.
  prefix / prefix_proj (tuners/prefix_tuning/model.py PrefixEncoder, PeftModel.get_prompt): prefixes (P, L·2·kv·hd)
        = embedding, or Linear(tanh(Linear(embedding))) with prefix_projection; viewed (P, 2L, kv, hd) and permuted so
        block 2l is layer l's past keys and 2l+1 its values (not rotated); real tokens take positions P.. and attend
        to all P past entries.

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
from engine_llama import fnv1a64, forward, init_param, param_shapes, rms_norm  # noqa: E402
from engine_ops import inv_freq_hf, rotate_half  # noqa: E402

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


P_VIRTUAL, ENC_HIDDEN = 3, 12


def forward_virtual(c, P, ids, labels, prompt=None, prefixes=None):
    """The Llama of engine_llama.forward with PEFT's prompt (P, D) or prefixes (P, L·2·kv·hd) in front."""
    B, T = ids.shape
    H, KV, hd = c["heads"], c["kv"], c["dim"] // c["heads"]
    n = (prompt if prompt is not None else prefixes).shape[0]
    x = F.embedding(ids, P["model.embed_tokens.weight"])
    if prompt is not None:
        x = torch.cat([prompt[None].expand(B, -1, -1), x], dim=1)
        labels = torch.cat([torch.full((B, n), -100), labels], dim=1)
    Tq = x.shape[1]
    past = 0 if prompt is not None else n
    pos = torch.arange(past, past + Tq)[None].expand(B, Tq).float()
    inv = inv_freq_hf(hd, c["theta"], None)
    freqs = (inv[None, :, None] @ pos[:, None, :]).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    Tk = past + Tq
    allowed = torch.arange(Tk)[None, :] <= (past + torch.arange(Tq))[:, None]
    mask = torch.zeros(Tq, Tk).masked_fill(~allowed, torch.finfo(torch.float32).min)
    if prefixes is not None:
        kv = prefixes.view(n, 2 * c["layers"], KV, hd).permute(1, 2, 0, 3)          # (2L, kv, P, hd)

    def lin(x, name):
        return F.linear(x, P[name + ".weight"], P.get(name + ".bias"))

    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, P[p + "input_layernorm.weight"], c["eps"])
        q = lin(h, p + "self_attn.q_proj").view(B, Tq, H, hd).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj").view(B, Tq, KV, hd).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj").view(B, Tq, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if prefixes is not None:                                                      # past_key_values
            k = torch.cat([kv[2 * l][None].expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([kv[2 * l + 1][None].expand(B, -1, -1, -1), v], dim=2)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        s = q @ k.transpose(2, 3) / math.sqrt(hd) + mask
        a = (torch.softmax(s, dim=-1, dtype=torch.float32) @ v).transpose(1, 2).reshape(B, Tq, H * hd)
        x = x + lin(a, p + "self_attn.o_proj")
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], c["eps"])
        x = x + lin(F.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms_norm(x, P["model.norm.weight"], c["eps"])
    logits = F.linear(x, P["lm_head.weight"])
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, c["vocab"]), labels[:, 1:].reshape(-1), ignore_index=-100)
    return (logits[:, n:] if prompt is not None else logits), loss


def run_virtual(method):
    c = TINY
    P = {n: init_param(n, s) for n, s in param_shapes(c)}
    hd = c["dim"] // c["heads"]
    tok = c["kv"] * hd
    if method == "prompt":
        A = {"prompt_encoder.embedding": u("prompt_encoder.embedding", (P_VIRTUAL, c["dim"]))}
    elif method == "prefix":
        A = {"prefix_encoder.embedding": u("prefix_encoder.embedding", (P_VIRTUAL, c["layers"] * 2 * tok))}
    else:
        A = {"prefix_encoder.embedding": u("prefix_encoder.embedding", (P_VIRTUAL, tok)),
             "prefix_encoder.transform_0.weight": u("prefix_encoder.transform_0.weight", (ENC_HIDDEN, tok)) / math.sqrt(tok),
             "prefix_encoder.transform_0.bias": 0.1 * u("prefix_encoder.transform_0.bias", (ENC_HIDDEN,)),
             "prefix_encoder.transform_2.weight": u("prefix_encoder.transform_2.weight", (c["layers"] * 2 * tok, ENC_HIDDEN)) / math.sqrt(ENC_HIDDEN),
             "prefix_encoder.transform_2.bias": 0.1 * u("prefix_encoder.transform_2.bias", (c["layers"] * 2 * tok,))}
    A = {k: v.clone().requires_grad_(True) for k, v in A.items()}
    ids, labels, _ = batch()
    if method == "prompt":
        logits, loss = forward_virtual(c, P, ids, labels, prompt=A["prompt_encoder.embedding"])
    else:
        e = A["prefix_encoder.embedding"]
        if method == "prefix_proj":
            e = F.linear(torch.tanh(F.linear(e, A["prefix_encoder.transform_0.weight"], A["prefix_encoder.transform_0.bias"])),
                         A["prefix_encoder.transform_2.weight"], A["prefix_encoder.transform_2.bias"])
        logits, loss = forward_virtual(c, P, ids, labels, prefixes=e)
    loss.backward()
    write_json(os.path.join(OUT, f"{method}.json"), {
        "config": c, "virtual_tokens": P_VIRTUAL, "encoder_hidden": ENC_HIDDEN, "ids": t2j(ids), "labels": t2j(labels),
        "loss": float(loss), "logits": t2j(logits),
        "params": [{"name": k, **t2j(v)} for k, v in A.items()],
        "grads": [{"name": k, **t2j(v.grad)} for k, v in A.items()],
    })


def batch():
    g = torch.Generator().manual_seed(5)
    B, T = 2, 9
    ids = torch.randint(0, TINY["vocab"], (B, T), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100
    labels[1, 0] = -100          # the first token is never a target here (PEFT scores it from the last virtual token)
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
    for m in ["prompt", "prefix", "prefix_proj"]:
        run_virtual(m)


if __name__ == "__main__":
    main()
