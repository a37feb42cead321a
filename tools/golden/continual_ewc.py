#!/usr/bin/python3
"""Golden fixture for EWC across stages (issue 17), computed with PyTorch from the published formulas.

Kirkpatrick et al. 2017 ("Overcoming catastrophic forgetting in neural networks", PNAS), diagonal empirical Fisher:
    F_i = (1/N) * sum_n (dL_n/dtheta_i)^2      at the stage's final weights theta*, one unit n per example (here per
                                                 micro-batch of the trainer fixture: L_n = its response-token CE mean)
    penalty(theta) = lambda/2 * sum_i F_i (theta_i - theta*_i)^2,   gradient lambda * F * (theta - theta*).
Model, LoRA adapters and batches are those of tests/fixtures/train/steps.safetensors (tools/golden/train_steps.py):
theta* = the LoRA weights after the fixture's 20 steps, N = 6 units (batches 0..5). The penalty is evaluated at
theta = the LoRA init, with lambda = 0.7; its gradient comes from torch.autograd on the formula.
Writes tests/fixtures/continual/ewc.safetensors and ewc.json.
Run: /usr/bin/python3 tools/golden/continual_ewc.py
"""
import json, os, struct, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_steps as ts   # the tiny Llama forward of the trainer golden (written from the HF modeling description)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")
OUT = os.path.join(ROOT, "continual")
UNITS, LAMBDA = 6, 0.7


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__": continue
        a, b = h["data_offsets"]
        dt = np.float32 if h["dtype"] == "F32" else np.int32
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(h["shape"]).copy()
    return out


def unit_loss(w, lora, batch):
    ids, lab, pos, doc = (torch.tensor(batch[k]).long() for k in ("ids", "labels", "positions", "documents"))
    logits = ts.forward(w, lora, ids, pos, doc)
    tgt = lab[:, 1:]
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, ts.CFG["vocab"]), tgt.reshape(-1),
                                             ignore_index=-100, reduction="mean")


def main():
    f = read_safetensors(os.path.join(ROOT, "train", "steps.safetensors"))
    w = {k[len("init."):]: torch.tensor(v) for k, v in f.items() if k.startswith("init.")}
    star = {k[len("lora_final."):]: torch.tensor(v, requires_grad=True) for k, v in f.items() if k.startswith("lora_final.")}
    theta = {k[len("lora_init."):]: torch.tensor(v) for k, v in f.items() if k.startswith("lora_init.")}
    names = sorted(star)
    fisher = {n: torch.zeros_like(star[n]) for n in names}
    losses = []
    for u in range(UNITS):
        batch = {k: f[f"batch.{u}.{k}"] for k in ("ids", "labels", "positions", "documents")}
        loss = unit_loss(w, star, batch)
        grads = torch.autograd.grad(loss, [star[n] for n in names])
        for n, g in zip(names, grads): fisher[n] += g.detach() ** 2 / UNITS
        losses.append(loss.item())

    th = {n: theta[n].clone().requires_grad_(True) for n in names}
    penalty = LAMBDA / 2 * sum((fisher[n] * (th[n] - star[n].detach()) ** 2).sum() for n in names)
    grads = torch.autograd.grad(penalty, [th[n] for n in names])

    tensors = {}
    for n, g in zip(names, grads):
        tensors["fisher." + n] = fisher[n].numpy()
        tensors["penalty_grad." + n] = g.numpy()
    os.makedirs(OUT, exist_ok=True)
    ts.write_safetensors(os.path.join(OUT, "ewc.safetensors"), tensors)
    with open(os.path.join(OUT, "ewc.json"), "w") as fh:
        json.dump(dict(units=UNITS, ewc_lambda=LAMBDA, penalty=penalty.item(), unit_losses=losses), fh, indent=1)
    print("penalty", penalty.item(), "fisher max", max(float(fisher[n].max()) for n in names))


if __name__ == "__main__":
    main()
