#!/usr/bin/env python3
"""Writes tests/fixtures/engine/llama_s.json and tests/fixtures/engine/llama_tiny.json: loss, logits and every
parameter gradient of a Llama decoder written here from the Hugging Face modeling_llama description (RMSNorm in
float32, rotate_half RoPE, GQA via repeat_kv, SwiGLU MLP, causal mask, labels shifted inside the model).

Weights are not stored: every parameter is hash_uniform(fnv1a64(name), n) scaled as below, which the C# test
recomputes bit for bit. llama_s: the S benchmark config (dim 256, 4 layers, 4 heads, ffn 688, vocab 4096) on a
2×16 batch; its gradients are stored as norm, two hashed random projections and 16 sampled entries per parameter
(full gradients would be 13 MB). llama_tiny: GQA, q/k/v biases, tied embeddings, sliding window, llama3 rope
scaling, right padding, packed documents and −100 labels, with full logits and gradients.
Run: /usr/bin/python3 tools/golden/engine_llama.py
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import hash_uniform, t2j, write_json  # noqa: E402
from engine_ops import inv_freq_hf, rotate_half  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "engine")


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & ((1 << 64) - 1)
    return h


def init_param(name, shape):
    n = int(np.prod(shape))
    u = hash_uniform(fnv1a64(name), n)
    if name.endswith("norm.weight"):
        v = np.float32(1.0) + np.float32(0.25) * u
    elif name.endswith(".bias"):
        v = np.float32(0.1) * u
    elif name.endswith("embed_tokens.weight"):
        v = u
    else:
        v = u * np.float32(1.0 / math.sqrt(shape[1]))
    return torch.tensor(v.reshape(shape))


def param_shapes(c):
    hd = c["dim"] // c["heads"]
    shapes = [("model.embed_tokens.weight", (c["vocab"], c["dim"]))]
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        shapes.append((p + "input_layernorm.weight", (c["dim"],)))
        for proj, out in [("q", c["heads"] * hd), ("k", c["kv"] * hd), ("v", c["kv"] * hd)]:
            shapes.append((p + f"self_attn.{proj}_proj.weight", (out, c["dim"])))
            if c.get("qkv_bias"):
                shapes.append((p + f"self_attn.{proj}_proj.bias", (out,)))
        shapes.append((p + "self_attn.o_proj.weight", (c["dim"], c["heads"] * hd)))
        shapes.append((p + "post_attention_layernorm.weight", (c["dim"],)))
        shapes.append((p + "mlp.gate_proj.weight", (c["ffn"], c["dim"])))
        shapes.append((p + "mlp.up_proj.weight", (c["ffn"], c["dim"])))
        shapes.append((p + "mlp.down_proj.weight", (c["dim"], c["ffn"])))
    shapes.append(("model.norm.weight", (c["dim"],)))
    if not c.get("tied"):
        shapes.append(("lm_head.weight", (c["vocab"], c["dim"])))
    return shapes


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rope_tables(c, pos):
    """cos, sin (B, 1, T, hd) for positions pos (B, T)."""
    hd = c["dim"] // c["heads"]
    inv = inv_freq_hf(hd, c["theta"], c.get("scaling"))
    freqs = (inv[None, :, None] @ pos[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]


def attention_mask(c, B, T, key_valid=None, doc=None):
    """(B, 1, T, T) additive mask: causal, sliding window, padding keys, block-diagonal documents."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = (j <= i).expand(B, T, T).clone()
    if c.get("window"):
        allowed &= j > i - c["window"]
    if key_valid is not None:
        allowed &= key_valid[:, None, :].bool()
    if doc is not None:
        allowed &= doc[:, :, None] == doc[:, None, :]
    return torch.zeros(B, 1, T, T).masked_fill(~allowed[:, None], torch.finfo(torch.float32).min)


def decoder_layer(c, P, l, x, cos, sin, mask, lin_adapter=None, score_bias=None):
    """x (B, T, D) -> decoder layer l's output: the two residual lines of LlamaDecoderLayer. score_bias: an additive
    (B, H, T|1, T) term on the attention scores, or None."""
    B, T, _ = x.shape
    H, KV, hd = c["heads"], c["kv"], c["dim"] // c["heads"]

    def lin(x, name):
        y = lin_adapter(x, name, P) if lin_adapter else None
        return F.linear(x, P[name + ".weight"], P.get(name + ".bias")) if y is None else y

    p = f"model.layers.{l}."
    h = rms_norm(x, P[p + "input_layernorm.weight"], c["eps"])
    q = lin(h, p + "self_attn.q_proj").view(B, T, H, hd).transpose(1, 2)
    k = lin(h, p + "self_attn.k_proj").view(B, T, KV, hd).transpose(1, 2)
    v = lin(h, p + "self_attn.v_proj").view(B, T, KV, hd).transpose(1, 2)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    k = k.repeat_interleave(H // KV, dim=1)                        # repeat_kv
    v = v.repeat_interleave(H // KV, dim=1)
    s = q @ k.transpose(2, 3) / math.sqrt(hd) + mask
    if score_bias is not None:
        s = s + score_bias
    a = torch.softmax(s, dim=-1, dtype=torch.float32) @ v
    a = a.transpose(1, 2).reshape(B, T, H * hd)
    x = x + lin(a, p + "self_attn.o_proj")
    h = rms_norm(x, P[p + "post_attention_layernorm.weight"], c["eps"])
    return x + lin(F.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")


def forward(c, P, ids, pos, labels, key_valid=None, doc=None, lin_adapter=None, embed_hook=None, after_layer=None,
            score_bias=None, final_hook=None):
    """lin_adapter(x, name, P) -> output or None: lets tools/golden/peft_methods.py wrap a projection;
    embed_hook(x), after_layer(l, x), score_bias(l) -> additive (B, H, T|1, T) scores or None, and final_hook(x) (the
    final normed hidden states) let tools/golden/instruction_aware.py add its variants."""
    B, T = ids.shape
    cos, sin = rope_tables(c, pos)                                     # (B, 1, T, hd)
    mask = attention_mask(c, B, T, key_valid, doc)
    x = F.embedding(ids, P["model.embed_tokens.weight"])
    if embed_hook:
        x = embed_hook(x)
    for l in range(c["layers"]):
        if after_layer and l > 0:
            x = after_layer(l - 1, x)
        x = decoder_layer(c, P, l, x, cos, sin, mask, lin_adapter, score_bias(l) if score_bias else None)
    if after_layer:
        x = after_layer(c["layers"] - 1, x)
    x = rms_norm(x, P["model.norm.weight"], c["eps"])
    if final_hook:
        final_hook(x)
    logits = F.linear(x, P["lm_head.weight"] if "lm_head.weight" in P else P["model.embed_tokens.weight"])
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, c["vocab"]), labels[:, 1:].reshape(-1), ignore_index=-100)
    return logits, loss


def run(c, ids, pos, labels, key_valid=None, doc=None):
    P = {n: init_param(n, s).requires_grad_(True) for n, s in param_shapes(c)}
    logits, loss = forward(c, P, ids, pos, labels, key_valid, doc)
    loss.backward()
    return P, logits, loss


def summary(name, g):
    flat = g.detach().reshape(-1).double()
    n = flat.numel()
    r1 = torch.tensor(hash_uniform(fnv1a64(name) ^ 0x1234567, n)).double()
    r2 = torch.tensor(hash_uniform(fnv1a64(name) ^ 0x7654321, n)).double()
    idx = (torch.tensor(hash_uniform(fnv1a64(name) ^ 0x55, 16)).double() * 0.5 + 0.5) * n
    idx = idx.long().clamp(0, n - 1)
    return {"name": name, "norm": float(flat.norm()), "proj1": float((flat * r1).sum()), "proj2": float((flat * r2).sum()),
            "idx": [int(i) for i in idx], "values": [float(flat[i]) for i in idx]}


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(3)

    S = {"vocab": 4096, "dim": 256, "layers": 4, "heads": 4, "kv": 4, "ffn": 688, "eps": 1e-5, "theta": 10000.0}
    B, T = 2, 16
    ids = torch.randint(0, S["vocab"], (B, T), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100                                              # a masked prompt
    pos = torch.arange(T)[None].expand(B, T).contiguous()
    P, logits, loss = run(S, ids, pos, labels)
    flat = logits.detach().reshape(-1)
    li = torch.randint(0, flat.numel(), (256,), generator=g)
    write_json(os.path.join(OUT, "llama_s.json"), {
        "config": S, "ids": t2j(ids), "labels": t2j(labels), "loss": float(loss),
        "logit_idx": [int(i) for i in li], "logit_values": [float(flat[i]) for i in li],
        "logits_norm": float(flat.double().norm()),
        "grads": [summary(n, P[n].grad) for n, _ in param_shapes(S)],
    })

    tiny = {"vocab": 96, "dim": 32, "layers": 2, "heads": 4, "kv": 2, "ffn": 48, "eps": 1e-6, "theta": 500000.0,
            "qkv_bias": True, "tied": True, "window": 4,
            "scaling": {"type": "llama3", "factor": 8.0, "low": 1.0, "high": 4.0, "orig": 16}}
    B, T = 2, 9
    ids = torch.randint(0, tiny["vocab"], (B, T), generator=g)
    key_valid = torch.tensor([[1] * 9, [1] * 7 + [0] * 2])
    doc = torch.tensor([[0] * 4 + [1] * 5, [0] * 9])
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 4], list(range(9))])
    labels = ids.clone()
    labels[1, 7:] = -100
    labels[0, 4] = -100                                               # first token of the second packed document
    labels[0, 1] = -100
    P, logits, loss = run(tiny, ids, pos, labels, key_valid, doc)
    write_json(os.path.join(OUT, "llama_tiny.json"), {
        "config": {k: v for k, v in tiny.items() if k != "scaling"}, "scaling": tiny["scaling"],
        "ids": t2j(ids), "labels": t2j(labels), "pos": t2j(pos), "key_valid": t2j(key_valid), "doc": t2j(doc),
        "loss": float(loss), "logits": t2j(logits),
        "grads": [{"name": n, **t2j(P[n].grad)} for n, _ in param_shapes(tiny)],
    })


if __name__ == "__main__":
    main()
