#!/usr/bin/env python3
"""Writes tests/fixtures/instruction_aware/losses.json: issue 15's dual-head and instruction-representation losses
on the tiny Llama of instruction_aware.py (same packed + padded batch), written here from their formulas
(docs/ARCHITECTURE.md "Instruction-aware model variants", src/InstructTune/Models/InstructionAware/InstructionHeads.cs):

  h        = final hidden states after the final RMSNorm                                   (B, T, D)
  p_d      = mean of h over document d's instruction tokens (segment 1), 0 when it has none (the pooled instruction
             representation: the causal mean at d's last token)
  L_resp   = mean cross-entropy over the response labels (today's SFT objective, lambda_instruction = 1)
  L_task   = mean over documents of CE(W_t p_d + b_t, task_d)   (task_d = task id of d's last token)
  e_d      = mean of the frozen embedding rows of d's instruction tokens (a detached copy of the table)
  L_repr   = sum over documents with instruction tokens and over D of (W_r p_d + b_r - e_d)^2 / (their count * D)
  L        = (1 - alpha) * (L_resp + lambda * L_task) + alpha * L_repr,   lambda = 0.7, alpha = 0.3

Gradients: both heads, model.embed_tokens.weight (it gets gradient through h; the target is a constant) and one
layer weight. Run: /usr/bin/python3 tools/golden/instruction_losses.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import t2j, write_json  # noqa: E402
from engine_llama import forward, init_param, param_shapes, rms_norm  # noqa: E402
from instruction_aware import OUT, TINY, batch, causal_instruction_mean, u  # noqa: E402

LAMBDA, ALPHA, TASKS = 0.7, 0.3, 3


def main():
    P = {n: init_param(n, s) for n, s in param_shapes(TINY)}
    checked = ["model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.weight"]
    for n in checked:
        P[n].requires_grad_(True)
    D = TINY["dim"]
    A = {
        "instruction_aware.task_head.weight": u("instruction_aware.task_head.weight", (TASKS, D)),
        "instruction_aware.task_head.bias": 0.1 * u("instruction_aware.task_head.bias", (TASKS,)),
        "instruction_aware.representation_head.weight": u("instruction_aware.representation_head.weight", (D, D)) / D ** 0.5,
        "instruction_aware.representation_head.bias": 0.1 * u("instruction_aware.representation_head.bias", (D,)),
    }
    A = {k: v.clone().requires_grad_(True) for k, v in A.items()}
    ids, seg, doc, pos, labels = batch("losses")
    tasks = torch.tensor([[0, 0, 0, 0, 0, 0, 2, 2, 2],
                          [1, 1, 1, 1, 1, 1, 1, 1, -1]])
    table = P["model.embed_tokens.weight"].detach().clone()
    captured = {}

    def after_layer(l, x):
        if l == TINY["layers"] - 1:
            captured["x"] = x
        return x

    valid = (doc >= 0).long()
    _, l_resp = forward(TINY, P, ids, pos, labels, key_valid=valid, doc=doc, after_layer=after_layer)
    h = rms_norm(captured["x"], P["model.norm.weight"], TINY["eps"])
    c = causal_instruction_mean(h, seg, doc)
    e_all = causal_instruction_mean(table[ids], seg, doc)
    pooled, targets, enc, has = [], [], [], []
    for b in range(ids.shape[0]):
        for d in sorted(set(doc[b].tolist()) - {-1}):
            last = max(t for t in range(ids.shape[1]) if doc[b, t] == d)
            pooled.append(c[b, last])
            targets.append(int(tasks[b, last]))
            enc.append(e_all[b, last])
            has.append(any(seg[b, t] == 1 for t in range(ids.shape[1]) if doc[b, t] == d))
    p = torch.stack(pooled)
    l_task = F.cross_entropy(p @ A["instruction_aware.task_head.weight"].T + A["instruction_aware.task_head.bias"], torch.tensor(targets))
    r = p @ A["instruction_aware.representation_head.weight"].T + A["instruction_aware.representation_head.bias"]
    m = torch.tensor(has, dtype=torch.float32)[:, None]
    l_repr = (((r - torch.stack(enc)) ** 2) * m).sum() / (m.sum() * D)
    loss = (1 - ALPHA) * (l_resp + LAMBDA * l_task) + ALPHA * l_repr
    loss.backward()
    grads = dict(A)
    for n in checked:
        grads[n] = P[n]
    write_json(os.path.join(OUT, "losses.json"), {
        "config": TINY, "lambda": LAMBDA, "alpha": ALPHA, "tasks_count": TASKS,
        "ids": t2j(ids), "segments": t2j(seg), "documents": t2j(doc), "positions": t2j(pos), "labels": t2j(labels),
        "tasks": t2j(tasks), "loss": float(loss), "response_loss": float(l_resp), "task_loss": float(l_task),
        "representation_loss": float(l_repr),
        "params": [{"name": k, **t2j(v)} for k, v in A.items()],
        "grads": [{"name": k, **t2j(v.grad)} for k, v in grads.items()],
    })


if __name__ == "__main__":
    main()
