#!/usr/bin/env python3
"""Writes tests/fixtures/peft/hint.json: HINT (hypernetwork instruction tuning, Ivison et al. ACL 2023, arXiv 2212.10315;
issue 16; C#: src/InstructTune/Peft/Hint) on a tiny Llama, written out here from the method's formulas as InstructTune
builds them (docs/ARCHITECTURE.md, "PEFT methods", lists where they depart from the paper):

  the instruction (tokens of segment 1) leaves each example; the rest runs at positions 0.. (targets: the next kept token)
  e       = mean over the instruction's tokens of the frozen base's hidden states after its first K decoder layers,
            run over the instruction alone (positions 0.., causal, no adapters); one e per distinct instruction (task)
  M_l     = reshape_{r×r}(W_l · e + b_l)                             generated adapter matrix of layer l (W_l: r²×D, b_l: r²)
  y       = W·x + b + (α/r) · B·M_l·A·x                              on each target projection of layer l
  z_l     = W_up,l · gelu(W_down,l · e + b_down,l) + b_up,l          viewed (P, 2, kv, hd): prompt p's key, then value
  a_l     = causal attention of the layer (over the kept tokens)
          + gate_l ⊙ softmax_p(q_t · k_p / √hd) · v_p               q_t the rotated query (adapted q_proj); GQA
  logits of an instruction token: 0 (not predicted)

4 examples of 2 tasks (rows 0, 2 share one instruction, rows 1, 3 another, of another length; row 3 starts with it),
parameters away from init: logits (input layout), loss and the gradient of every HINT parameter.
Base weights are engine_llama.py's hash_uniform init (recomputed by the C# test).
Run: /usr/bin/python3 tools/golden/hint.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import t2j, write_json  # noqa: E402
from engine_llama import attention_mask, decoder_layer, forward, init_param, param_shapes, rope_tables  # noqa: E402
from engine_ops import rotate_half  # noqa: E402
from peft_methods import TINY, u  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "peft")
K_ENC, R, ALPHA, P_V, M = 1, 4, 8.0, 3, 5
TARGETS = ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"]


def main():
    P = {n: init_param(n, s) for n, s in param_shapes(TINY)}
    g = torch.Generator().manual_seed(17)
    B, T, D = 4, 9, TINY["dim"]
    H, KV, L, FFN = TINY["heads"], TINY["kv"], TINY["layers"], TINY["ffn"]
    hd = D // H
    ids = torch.randint(0, TINY["vocab"], (B, T), generator=g)
    seg = torch.tensor([[0, 1, 1, 1, 2, 3, 3, 3, 3],
                        [0, 0, 1, 1, 2, 2, 3, 3, 3],
                        [0, 1, 1, 1, 3, 3, 3, 3, 3],
                        [1, 1, 0, 2, 3, 3, 3, 3, 3]])
    ids[2, 1:4] = ids[0, 1:4]                                                  # task 0: rows 0 and 2
    ids[3, 0:2] = ids[1, 2:4]                                                  # task 1: rows 1 and 3
    labels = ids.clone()
    labels[seg != 3] = -100

    A = {}
    for l in range(L):
        h = "hint_hypernetwork."
        A[h + f"adapter_w_{l}"] = u(h + f"adapter_w_{l}", (R * R, D)) / math.sqrt(D)
        A[h + f"adapter_b_{l}"] = 0.3 * u(h + f"adapter_b_{l}", (R * R,))
        A[h + f"prompt_down_{l}.weight"] = u(h + f"prompt_down_{l}.weight", (M, D)) / math.sqrt(D)
        A[h + f"prompt_down_{l}.bias"] = 0.1 * u(h + f"prompt_down_{l}.bias", (M,))
        A[h + f"prompt_up_{l}.weight"] = u(h + f"prompt_up_{l}.weight", (P_V * 2 * KV * hd, M)) / math.sqrt(M)
        A[h + f"prompt_up_{l}.bias"] = 0.1 * u(h + f"prompt_up_{l}.bias", (P_V * 2 * KV * hd,))
        A[h + f"prompt_gate_{l}"] = 0.5 * u(h + f"prompt_gate_{l}", (H * hd,))
        for t in TARGETS:
            n = f"model.layers.{l}.{t}"
            fin, fout = (FFN, D) if t == "mlp.down_proj" else (D, KV * hd if t == "self_attn.v_proj" else D)
            A[n + ".hint_A.weight"] = u(n + ".hint_A.weight", (R, fin)) / math.sqrt(fin)
            A[n + ".hint_B.weight"] = 0.2 * u(n + ".hint_B.weight", (fout, R))
    A = {k: v.clone().requires_grad_(True) for k, v in A.items()}

    # The tasks: each distinct instruction, encoded once by the frozen base's first K_ENC layers.
    instr = [tuple(ids[b][seg[b] == 1].tolist()) for b in range(B)]
    tasks = list(dict.fromkeys(instr))
    E = []
    with torch.no_grad():
        for t in tasks:
            x_ids = torch.tensor([t])
            pos = torch.arange(len(t))[None]
            cos, sin = rope_tables(TINY, pos)
            mask = attention_mask(TINY, 1, len(t))
            x = F.embedding(x_ids, P["model.embed_tokens.weight"])
            for l in range(K_ENC):
                x = decoder_layer(TINY, P, l, x, cos, sin, mask)
            E.append(x[0].mean(0))
    E = torch.stack(E)                                                          # (tasks, D)

    scale = ALPHA / R
    logits_all = torch.zeros(B, T, TINY["vocab"])
    ce_sum, count = 0.0, 0
    for b in range(B):
        e = E[tasks.index(instr[b])]
        kept = (seg[b] != 1).nonzero().flatten()
        n = len(kept)
        x_ids, x_lab = ids[b, kept][None], labels[b, kept][None]
        pos = torch.arange(n)[None]
        cos, sin = rope_tables(TINY, pos)
        mats = [(A[f"hint_hypernetwork.adapter_w_{l}"] @ e + A[f"hint_hypernetwork.adapter_b_{l}"]).view(R, R) for l in range(L)]
        prompts = []
        for l in range(L):
            hh = F.gelu(F.linear(e, A[f"hint_hypernetwork.prompt_down_{l}.weight"], A[f"hint_hypernetwork.prompt_down_{l}.bias"]))
            z = F.linear(hh, A[f"hint_hypernetwork.prompt_up_{l}.weight"], A[f"hint_hypernetwork.prompt_up_{l}.bias"]).view(P_V, 2, KV, hd)
            k = z[:, 0].permute(1, 0, 2).repeat_interleave(H // KV, dim=0)[None]   # (1, H, P, hd)
            v = z[:, 1].permute(1, 0, 2).repeat_interleave(H // KV, dim=0)[None]
            prompts.append((k, v))
        queries = {}

        def lin(x, name, P_):
            l = int(name.split(".")[2])
            t = name.split(".", 3)[3]
            y = None
            if t in TARGETS:
                y = F.linear(x, P_[name + ".weight"], P_.get(name + ".bias")) \
                    + scale * F.linear(F.linear(F.linear(x, A[name + ".hint_A.weight"]), mats[l]), A[name + ".hint_B.weight"])
            if t == "self_attn.q_proj":
                q = y.view(1, n, H, hd).transpose(1, 2)
                queries[l] = q * cos + rotate_half(q) * sin                        # the rotated (adapted) queries
            if t == "self_attn.o_proj":
                k, v = prompts[l]
                s = queries[l] @ k.transpose(2, 3) / math.sqrt(hd)                 # (1, H, n, P): no mask
                a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(1, n, H * hd)
                y = F.linear(x + A[f"hint_hypernetwork.prompt_gate_{l}"] * a, P_[name + ".weight"], P_.get(name + ".bias"))
            return y

        logits, _ = forward(TINY, P, x_ids, pos, x_lab, lin_adapter=lin)
        logits_all = logits_all.index_put((torch.tensor([b] * n), kept), logits[0])
        ce_sum = ce_sum + F.cross_entropy(logits[0, :-1], x_lab[0, 1:], ignore_index=-100, reduction="sum")
        count += int((x_lab[0, 1:] != -100).sum())
    loss = ce_sum / count
    loss.backward()
    write_json(os.path.join(OUT, "hint.json"), {
        "config": TINY, "encoder_layers": K_ENC, "r": R, "lora_alpha": ALPHA, "num_virtual_tokens": P_V, "bottleneck": M,
        "target_modules": [t.split(".")[1] for t in TARGETS],
        "ids": t2j(ids), "labels": t2j(labels), "segments": t2j(seg),
        "loss": float(loss), "logits": t2j(logits_all),
        "params": [{"name": k, **t2j(v)} for k, v in A.items()],
        "grads": [{"name": k, **t2j(v.grad)} for k, v in A.items()],
    })


if __name__ == "__main__":
    main()
