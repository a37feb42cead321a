#!/usr/bin/env python3
"""Writes tests/fixtures/instruction_aware/markers.json: instruction marker tokens as transformers adds them
(tokenizer.add_special_tokens + model.resize_token_embeddings(len(tokenizer)), mean_resizing=True) on a tiny untied
Llama (engine_llama.py's PyTorch decoder, weights from init_param):

  new rows (ids V0 .. V0+k-1) of model.embed_tokens.weight and of lm_head.weight = the mean of the old rows
  (transformers' _init_added_embeddings_weights_with_mean / _init_added_lm_head_weights_with_mean take
  torch.mean(old, axis=0) and draw from N(mean, 1e-9 * covariance) when the covariance is positive definite, else
  use the mean itself; InstructTune uses the mean, which is what is written here);
  then the forward of a batch holding both marker ids: logits, the loss, and the gradients of the new rows of both
  tables (the rows LoRA/QLoRA train as added_tokens.*).

Run: /usr/bin/python3 tools/golden/marker_tokens.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import t2j, write_json  # noqa: E402
from engine_llama import forward, init_param, param_shapes  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "instruction_aware")
TINY = {"vocab": 40, "dim": 16, "layers": 2, "heads": 2, "kv": 1, "ffn": 24, "eps": 1e-6, "theta": 10000.0, "qkv_bias": True}
K = 2


def main():
    c = TINY
    base = {n: init_param(n, s) for n, s in param_shapes(c)}
    V0 = c["vocab"]
    big = dict(c, vocab=V0 + K)
    P = {}
    for n, t in base.items():
        if n in ("model.embed_tokens.weight", "lm_head.weight"):
            mean = torch.mean(t, dim=0)                                   # transformers: torch.mean(old_embeddings_weight, axis=0)
            t = torch.cat([t, mean[None, :].repeat(K, 1)], dim=0)
        P[n] = t.clone().requires_grad_(True)
    ids = torch.tensor([[1, V0, 5, 9, 13, V0 + 1, 7, 3, 11], [2, V0, 4, V0 + 1, 8, 6, 10, 12, 14]])
    pos = torch.arange(9)[None, :].repeat(2, 1)
    labels = torch.tensor([[-100, -100, -100, -100, -100, -100, 7, 3, 11], [-100, -100, -100, -100, 8, 6, 10, 12, V0 + 1]])
    logits, loss = forward(big, P, ids, pos, labels)
    loss.backward()
    write_json(os.path.join(OUT, "markers.json"), {
        "config": c, "added": K, "ids": t2j(ids), "labels": t2j(labels), "loss": float(loss), "logits": t2j(logits),
        "embed_rows": t2j(P["model.embed_tokens.weight"][V0:]), "head_rows": t2j(P["lm_head.weight"][V0:]),
        "embed_rows_grad": t2j(P["model.embed_tokens.weight"].grad[V0:]), "head_rows_grad": t2j(P["lm_head.weight"].grad[V0:]),
    })


if __name__ == "__main__":
    main()
