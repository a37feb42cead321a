#!/usr/bin/python3
"""Golden fixture for the feedback objectives (issue 19): tests/fixtures/preference/losses.json.

A tiny Llama (engine_llama.py's forward and hash initialisation, which the C# tests recompute bit for bit) with
LoRA on q_proj, v_proj and down_proj is the policy; the same model with the adapter disabled is the reference.
Four fixed (prompt, chosen, rejected) pairs and four unpaired (prompt, completion, label) examples are laid out as
the C# collator does (chosen rows then rejected rows, right padding, labels only on completions, HF shift).
For every objective the loss, TRL's logged metrics and the gradient of every LoRA matrix are computed here with
PyTorch autograd from the formulas of TRL's trainers, written out below:
  DPO  (dpo_trainer.py, loss_type sigmoid / hinge, label_smoothing = cDPO), IPO (loss_type ipo, length-averaged
  log-probs), KTO (kto_trainer.py: KL estimate from mismatched prompt/completion pairs, no gradient, clamped at 0),
  ORPO (orpo_trainer.py: odds ratio on averaged log-probs, NLL on chosen), SimPO (cpo_trainer.py loss_type simpo,
  optional cpo_alpha NLL). One full-fine-tuning case (every parameter's gradient, reference log-probs given) too.
Run: /usr/bin/python3 tools/golden/preference_losses.py
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import hash_uniform  # noqa: E402
from engine_llama import fnv1a64, init_param, param_shapes, forward  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "preference")
C = {"vocab": 40, "dim": 16, "layers": 1, "heads": 2, "kv": 1, "ffn": 24, "eps": 1e-5, "theta": 10000.0}
RANK, ALPHA, TARGETS = 2, 4.0, ["q_proj", "v_proj", "down_proj"]
LORA_INIT = 0.5


def make_data():
    g = np.random.default_rng(19)
    def seq(prompt, completion):
        ids = [1] + prompt + completion                     # 1 plays BOS
        labels = [-100] * (1 + len(prompt)) + completion
        return {"ids": ids, "labels": labels}
    def toks(n): return [int(v) for v in g.integers(3, C["vocab"], n)]
    pairs = []
    for _ in range(4):
        p = toks(int(g.integers(2, 5)))
        pairs.append({"chosen": seq(p, toks(int(g.integers(2, 6)))), "rejected": seq(p, toks(int(g.integers(2, 6))))})
    unpaired = []
    for k in range(4):
        p, c = toks(int(g.integers(2, 5))), toks(int(g.integers(2, 6)))
        unpaired.append({**seq(p, c), "prompt": p, "completion": c, "desirable": k % 3 != 1})
    # KL sequence k: prompt k with the completion of k-1 (cyclic), as PreferenceData.Unpaired builds it.
    kl = [seq(unpaired[k]["prompt"], unpaired[k - 1]["completion"]) for k in range(4)]
    return pairs, unpaired, kl


def collate(seqs):
    T = max(len(s["ids"]) for s in seqs)
    B = len(seqs)
    ids = torch.zeros(B, T, dtype=torch.long); labels = torch.full((B, T), -100, dtype=torch.long)
    pos = torch.zeros(B, T, dtype=torch.long); doc = torch.full((B, T), -1, dtype=torch.long)
    for r, s in enumerate(seqs):
        n = len(s["ids"])
        ids[r, :n] = torch.tensor(s["ids"]); labels[r, :n] = torch.tensor(s["labels"]); labels[r, 0] = -100
        pos[r, :n] = torch.arange(n); doc[r, :n] = 0
    return ids, labels, pos, doc


def row_logps(P, seqs):
    """Per row: (sum of log p over the labelled positions, their count) — TRL's get_batch_logps."""
    ids, labels, pos, doc = collate(seqs)
    logits, _ = forward(C, P, ids, pos, labels, None, doc)
    tgt = labels[:, 1:]
    mask = tgt != -100
    lp = torch.gather(torch.log_softmax(logits[:, :-1].float(), -1), 2, tgt.clamp(min=0)[..., None]).squeeze(-1)
    return (lp * mask).sum(-1).double(), mask.sum(-1)


def params(lora):
    base = {n: init_param(n, s) for n, s in param_shapes(C)}
    if lora is None:
        return base, {}
    A = {}
    for n, s in param_shapes(C):
        if n.endswith(".weight") and any(t in n for t in TARGETS):
            m = n[:-len(".weight")]
            out_f, in_f = s
            A[m + ".lora_A.weight"] = torch.tensor(hash_uniform(fnv1a64(m + ".lora_A.weight"), RANK * in_f).reshape(RANK, in_f) * LORA_INIT).requires_grad_(True)
            A[m + ".lora_B.weight"] = torch.tensor(hash_uniform(fnv1a64(m + ".lora_B.weight"), out_f * RANK).reshape(out_f, RANK) * LORA_INIT).requires_grad_(True)
    return base, A


def policy(base, lora, enabled=True):
    if not enabled or not lora:
        return base
    P = dict(base)
    for k in list(P):
        m = k[:-len(".weight")]
        if m + ".lora_A.weight" in lora:
            P[k] = base[k] + (ALPHA / RANK) * lora[m + ".lora_B.weight"] @ lora[m + ".lora_A.weight"]
    return P


def pair_loss(o, pc, pr, nc, nr, rc, rr):
    b, eps = o["beta"], o.get("label_smoothing", 0.0)
    obj = o["objective"]
    if obj == "dpo":
        h = (pc - pr) - (rc - rr)
        if o.get("loss_type", "sigmoid") == "hinge":
            losses = torch.relu(1 - b * h)
        else:
            losses = -F.logsigmoid(b * h) * (1 - eps) - F.logsigmoid(-b * h) * eps
        return losses, b * (pc - rc).detach(), b * (pr - rr).detach(), {}
    if obj == "ipo":
        ac, ar, rac, rar = pc / nc, pr / nr, rc / nc, rr / nr
        h = (ac - ar) - (rac - rar)
        return (h - 1 / (2 * b)) ** 2, b * (ac - rac).detach(), b * (ar - rar).detach(), {}
    if obj == "orpo":
        ac, ar = pc / nc, pr / nr
        log_odds = (ac - ar) - (torch.log1p(-torch.exp(ac)) - torch.log1p(-torch.exp(ar)))
        ratio = F.logsigmoid(log_odds)
        return -b * ratio, b * ac.detach(), b * ar.detach(), {"log_odds_ratio": ratio.mean().item(), "log_odds_chosen": log_odds.mean().item()}
    if obj == "simpo":
        ac, ar = pc / nc, pr / nr
        h = (ac - ar) - o["simpo_gamma"] / b
        losses = -F.logsigmoid(b * h) * (1 - eps) - F.logsigmoid(-b * h) * eps
        return losses, b * ac.detach(), b * ar.detach(), {}
    raise ValueError(obj)


def run_pairs(o, pairs, full=False, ref_given=None):
    base, lora = params(None if full else "lora")
    if full:
        for v in base.values(): v.requires_grad_(True)
    P = policy(base, lora)
    seqs = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    S, n = row_logps(P, seqs)
    k = len(pairs)
    pc, pr, nc, nr = S[:k], S[k:], n[:k].double(), n[k:].double()
    if ref_given is not None:
        R = torch.tensor(ref_given, dtype=torch.float64)
    else:
        with torch.no_grad():
            R, _ = row_logps(policy(base, lora, enabled=False), seqs)
    rc, rr = R[:k], R[k:]
    losses, crew, rrew, extra = pair_loss(o, pc, pr, nc, nr, rc, rr)
    loss = losses.mean()
    nll_w = {"orpo": 1.0, "simpo": o.get("cpo_alpha", 0.0)}.get(o["objective"], 0.0)
    metrics = {}
    if nll_w > 0:
        nll = -pc.sum() / nc.sum()                          # mean cross-entropy over the chosen tokens
        loss = loss + nll_w * nll
        metrics["nll_loss"] = nll.item()
    loss.backward()
    avg = o["objective"] in ("ipo", "orpo", "simpo")
    metrics.update({"loss": loss.item(), "rewards/chosen": crew.mean().item(), "rewards/rejected": rrew.mean().item(),
                    "rewards/accuracies": (crew > rrew).double().mean().item(), "rewards/margins": (crew - rrew).mean().item(),
                    "logps/chosen": (pc / nc if avg else pc).mean().item(), "logps/rejected": (pr / nr if avg else pr).mean().item(), **extra})
    grads = {name: t.grad.reshape(-1).tolist() for name, t in (base if full else lora).items()}
    return metrics, grads, R.tolist()


def fit_lora_to(seqs, steps=30, lr=0.05):
    """LoRA weights that raise the log-probs of seqs (so KTO's KL estimate is positive and not clamped away)."""
    base, lora = params("lora")
    for _ in range(steps):
        S, _ = row_logps(policy(base, lora), seqs)
        (-S.sum()).backward()
        with torch.no_grad():
            for t in lora.values(): t -= lr * t.grad; t.grad = None
    return {k: v.detach().clone() for k, v in lora.items()}


def run_kto(o, unpaired, kl_seqs, lora_weights):
    base, _ = params(None)
    lora = {k: v.clone().requires_grad_(True) for k, v in lora_weights.items()}
    P, Pref = policy(base, lora), policy(base, lora, enabled=False)
    S, _ = row_logps(P, unpaired)
    with torch.no_grad():
        R, _ = row_logps(Pref, unpaired)
        kl_p, _ = row_logps(P, kl_seqs)
        kl_r, _ = row_logps(Pref, kl_seqs)
        kl = (kl_p - kl_r).mean().clamp(min=0)
    d = torch.tensor([u["desirable"] for u in unpaired])
    ratio = S - R
    chosen_losses = 1 - torch.sigmoid(o["beta"] * (ratio[d] - kl))
    rejected_losses = 1 - torch.sigmoid(o["beta"] * (kl - ratio[~d]))
    losses = torch.cat((o["desirable_weight"] * chosen_losses, o["undesirable_weight"] * rejected_losses), 0)
    loss = losses.mean()
    loss.backward()
    rewards = o["beta"] * ratio.detach()
    metrics = {"loss": loss.item(), "kl": kl.item(), "rewards/chosen": rewards[d].mean().item(), "rewards/rejected": rewards[~d].mean().item(),
               "rewards/margins": rewards[d].mean().item() - rewards[~d].mean().item(),
               "logps/chosen": S[d].mean().item(), "logps/rejected": S[~d].mean().item(),
               "count/chosen": int(d.sum()), "count/rejected": int((~d).sum())}
    return metrics, {name: t.grad.reshape(-1).tolist() for name, t in lora.items()}, kl_p.tolist(), kl_r.tolist()


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    pairs, unpaired, kl_seqs = make_data()
    cases = []
    for name, o in [("dpo", {"objective": "dpo", "beta": 0.1}),
                    ("cdpo", {"objective": "dpo", "beta": 0.5, "label_smoothing": 0.2}),
                    ("hinge", {"objective": "dpo", "beta": 0.5, "loss_type": "hinge"}),
                    ("ipo", {"objective": "ipo", "beta": 0.1}),
                    ("orpo", {"objective": "orpo", "beta": 0.1}),
                    ("simpo", {"objective": "simpo", "beta": 2.0, "simpo_gamma": 0.5}),
                    ("cpo_simpo", {"objective": "simpo", "beta": 2.0, "simpo_gamma": 0.5, "cpo_alpha": 1.0, "label_smoothing": 0.1})]:
        metrics, grads, ref = run_pairs(o, pairs)
        cases.append({"name": name, "options": o, "metrics": metrics, "grads": grads, "reference": ref})
        print(name, {k: round(v, 5) for k, v in metrics.items()})
    # Full fine-tuning: the policy is the base, the reference log-probs are given (those of base + LoRA).
    base, lora = params("lora")
    with torch.no_grad():
        ref_given, _ = row_logps(policy(base, lora), [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs])
    metrics, grads, _ = run_pairs({"objective": "dpo", "beta": 0.1}, pairs, full=True, ref_given=ref_given.tolist())
    cases.append({"name": "dpo_full", "options": {"objective": "dpo", "beta": 0.1}, "full": True, "metrics": metrics, "grads": grads,
                  "reference": ref_given.tolist()})
    print("dpo_full", {k: round(v, 5) for k, v in metrics.items()})
    o = {"objective": "kto", "beta": 0.5, "desirable_weight": 1.0, "undesirable_weight": 1.33}
    fitted = fit_lora_to(kl_seqs)
    metrics, grads, kl_p, kl_r = run_kto(o, unpaired, kl_seqs, fitted)
    cases.append({"name": "kto", "options": o, "metrics": metrics, "grads": grads, "kl_policy": kl_p, "kl_reference": kl_r,
                  "lora_weights": {k: v.reshape(-1).tolist() for k, v in fitted.items()}})
    print("kto", {k: round(v, 5) for k, v in metrics.items()})
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "losses.json"), "w") as f:
        json.dump({"config": C, "lora": {"rank": RANK, "alpha": ALPHA, "targets": TARGETS, "init": LORA_INIT},
                   "pairs": pairs, "unpaired": [{k: u[k] for k in ("ids", "labels", "desirable")} for u in unpaired],
                   "kl": kl_seqs, "cases": cases}, f, separators=(",", ":"))
    print("wrote", os.path.join(OUT, "losses.json"))


if __name__ == "__main__":
    main()
