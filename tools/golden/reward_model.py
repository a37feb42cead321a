#!/usr/bin/python3
"""Golden fixture for the reward model (issue 19, training.objective: reward): tests/fixtures/preference/reward.json.

The tiny Llama and the four (prompt, chosen, rejected) pairs of preference_losses.py (same hash initialisation, same
collation: chosen rows then rejected rows, right padding). The value head is HF's LlamaForSequenceClassification
`score` (Linear(hidden, 1, bias=False)) read at the last non-padding token of each row:
    r_i = score.weight · norm(x)[i, last_i]
and the loss is TRL RewardTrainer.compute_loss:
    loss = -logsigmoid(r_chosen - r_rejected - margin).mean() + center_rewards_coefficient * mean((r_chosen + r_rejected)^2)
(margin: the dataset's per-pair `margin` column when it has one, TRL's `if "margin" in inputs`; else 0) with TRL's accuracy metric (r_chosen > r_rejected). Gradients by PyTorch autograd: LoRA case (adapter matrices and the
head) and full fine-tuning case (every parameter and the head).
Run: /usr/bin/python3 tools/golden/reward_model.py
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from engine_common import hash_uniform  # noqa: E402
from engine_llama import fnv1a64, forward  # noqa: E402
import preference_losses as pl  # noqa: E402

HEAD_INIT = 0.5


def rewards(P, head, seqs):
    ids, labels, pos, doc = pl.collate(seqs)
    Q = dict(P)
    Q["lm_head.weight"] = head                              # (1, dim): "logits" = the head over every final hidden state
    no_labels = torch.full_like(labels, -100)              # the LM loss of forward() is not used (vocab 1 = the head)
    scores, _ = forward(dict(pl.C, vocab=1), Q, ids, pos, no_labels, None, doc)   # (B, T, 1)
    last = torch.tensor([len(s["ids"]) - 1 for s in seqs])
    return scores[torch.arange(len(seqs)), last, 0].double()


def run(pairs, full, center, margins=None):
    base, lora = pl.params(None if full else "lora")
    if full:
        for v in base.values(): v.requires_grad_(True)
    head = torch.tensor(hash_uniform(fnv1a64("score.weight"), pl.C["dim"]).reshape(1, pl.C["dim"]) * HEAD_INIT).float().requires_grad_(True)
    P = pl.policy(base, lora)
    seqs = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    r = rewards(P, head, seqs)
    k = len(pairs)
    rc, rr = r[:k], r[k:]
    m = torch.tensor(margins, dtype=torch.float64) if margins is not None else torch.zeros(k, dtype=torch.float64)
    loss = -F.logsigmoid(rc - rr - m).mean()
    if center > 0:
        loss = loss + center * torch.mean((rc + rr) ** 2)
    loss.backward()
    metrics = {"loss": loss.item(), "accuracy": (rc > rr).double().mean().item(), "rewards/chosen": rc.mean().item(),
               "rewards/rejected": rr.mean().item(), "rewards/margins": (rc - rr).mean().item()}
    grads = {name: (t.grad if t.grad is not None else torch.zeros_like(t)).reshape(-1).tolist() for name, t in (base if full else lora).items()}
    grads["score.weight"] = head.grad.reshape(-1).tolist()
    return metrics, grads, r.tolist(), head.detach().reshape(-1).tolist()


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    pairs, _, _ = pl.make_data()
    cases = []
    margins = [0.5, -0.25, 1.0, 0.0][:len(pairs)]
    for name, full, center, m in [("reward_lora", False, 0.0, None), ("reward_lora_centered", False, 0.01, None),
                                  ("reward_full", True, 0.0, None), ("reward_lora_margin", False, 0.01, margins)]:
        metrics, grads, r, head = run(pairs, full, center, m)
        case = {"name": name, "full": full, "center_rewards_coefficient": center, "metrics": metrics, "grads": grads,
                "rewards": r, "head": head}
        if m is not None:
            case["margins"] = m
        cases.append(case)
        print(name, {k: round(v, 5) for k, v in metrics.items()})
    with open(os.path.join(pl.OUT, "reward.json"), "w") as f:
        json.dump({"config": pl.C, "cases": cases}, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
