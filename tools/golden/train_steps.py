#!/usr/bin/python3
"""Golden fixture for the trainer (issue 7): 20 optimizer steps of full fine-tuning and of LoRA on a tiny Llama.

Writes tests/fixtures/train/steps.safetensors (initial weights, LoRA A matrices, batches, final weights) and
tests/fixtures/train/steps.json (hyper-parameters and the loss of every step), computed with PyTorch only:
a Llama decoder written from the Hugging Face modeling description (RMSNorm in float32, rotate_half RoPE,
grouped-query attention by repeat_kv, SwiGLU), a block-diagonal causal mask from per-token document ids
(packed rows), torch.optim.AdamW with weight decay on matrices only, torch.nn.utils.clip_grad_norm_,
transformers' cosine-with-warm-up schedule written out, and the SFT loss normalised by the response tokens of
the whole optimizer step (gradient accumulation over 2 micro-batches).
Run: /usr/bin/python3 tools/golden/train_steps.py
"""
import json, math, os, struct
import numpy as np
import torch

torch.manual_seed(0)
torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "train")

CFG = dict(vocab=61, hidden=32, inter=48, layers=2, heads=4, kv=2, eps=1e-5, theta=10000.0)
B, T, ACCUM, STEPS = 2, 12, 2, 20
LR, WD, WARMUP, CLIP = 1e-2, 0.01, 3, 1.0
RANK, ALPHA = 4, 8.0
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def init_weights():
    c, g = CFG, torch.Generator().manual_seed(1)
    hd = c["hidden"] // c["heads"]
    w = {"model.embed_tokens.weight": torch.randn(c["vocab"], c["hidden"], generator=g) * 0.5,
         "model.norm.weight": 1 + 0.1 * torch.randn(c["hidden"], generator=g),
         "lm_head.weight": torch.randn(c["vocab"], c["hidden"], generator=g) * 0.2}
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(c["hidden"], generator=g)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(c["hidden"], generator=g)
        shapes = {"self_attn.q_proj": (c["heads"] * hd, c["hidden"]), "self_attn.k_proj": (c["kv"] * hd, c["hidden"]),
                  "self_attn.v_proj": (c["kv"] * hd, c["hidden"]), "self_attn.o_proj": (c["hidden"], c["heads"] * hd),
                  "mlp.gate_proj": (c["inter"], c["hidden"]), "mlp.up_proj": (c["inter"], c["hidden"]),
                  "mlp.down_proj": (c["hidden"], c["inter"])}
        for name, shape in shapes.items():
            w[p + name + ".weight"] = torch.randn(*shape, generator=g) * (0.6 / math.sqrt(shape[1]))
    return w


def make_batches():
    """Per micro-batch: ids, labels (-100 outside responses), positions, document ids (-1 = padding)."""
    g = np.random.default_rng(7)
    out = []
    for _ in range(STEPS * ACCUM):
        ids = np.zeros((B, T), np.int32); labels = np.full((B, T), -100, np.int32)
        pos = np.zeros((B, T), np.int32); doc = np.full((B, T), -1, np.int32)
        for r in range(B):
            t, d = 0, 0
            while t < T:
                n = int(g.integers(4, 9))
                if t + n > T:
                    if d == 0: n = T - t
                    else: break
                prompt = int(g.integers(1, n - 1))
                ids[r, t:t + n] = g.integers(3, CFG["vocab"], n)
                labels[r, t + prompt:t + n] = ids[r, t + prompt:t + n]
                labels[r, t] = -100                      # the first token of a document is never a target
                pos[r, t:t + n] = np.arange(n); doc[r, t:t + n] = d
                t += n; d += 1
        out.append((ids, labels, pos, doc))
    return out


def rms(x, w, eps):
    v = x.float().pow(2).mean(-1, keepdim=True)
    return w * (x.float() * torch.rsqrt(v + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(w, lora, ids, pos, doc):
    c = CFG
    hd = c["hidden"] // c["heads"]
    def lin(x, name):
        y = x @ w[name + ".weight"].T
        if lora is not None and name.split(".")[-1] in TARGETS:
            y = y + (x @ lora[name + ".lora_A.weight"].T @ lora[name + ".lora_B.weight"].T) * (ALPHA / RANK)
        return y
    x = w["model.embed_tokens.weight"][ids]                                   # (B, T, C)
    inv = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = pos.float()[..., None] * inv                                       # (B, T, hd/2)
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]                          # (B, 1, T, hd)
    allowed = (doc[:, :, None] == doc[:, None, :]) & torch.tril(torch.ones(T, T, dtype=torch.bool))
    mask = torch.zeros(B, 1, T, T).masked_fill(~allowed[:, None], float("-inf"))
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        h = rms(x, w[p + "input_layernorm.weight"], c["eps"])
        q = lin(h, p + "self_attn.q_proj").view(B, T, c["heads"], hd).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj").view(B, T, c["kv"], hd).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj").view(B, T, c["kv"], hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = c["heads"] // c["kv"]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, c["heads"] * hd)
        x = x + lin(o, p + "self_attn.o_proj")
        h = rms(x, w[p + "post_attention_layernorm.weight"], c["eps"])
        x = x + lin(torch.nn.functional.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms(x, w["model.norm.weight"], c["eps"])
    return x @ w["lm_head.weight"].T


def lr_at(step, total):
    if step < WARMUP: return LR * step / max(1, WARMUP)
    progress = (step - WARMUP) / max(1, total - WARMUP)
    return LR * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(init, batches, lora_init=None):
    w = {k: v.clone().requires_grad_(lora_init is None) for k, v in init.items()}
    lora = None
    if lora_init is not None:
        lora = {k: v.clone().requires_grad_(True) for k, v in lora_init.items()}
        params = [lora[k] for k in sorted(lora)]
        groups = [{"params": params, "weight_decay": WD}]          # LoRA matrices are all matrices
    else:
        names = sorted(w)
        groups = [{"params": [w[n] for n in names if w[n].dim() >= 2], "weight_decay": WD},
                  {"params": [w[n] for n in names if w[n].dim() < 2], "weight_decay": 0.0}]
        params = [w[n] for n in names]
    opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for step in range(STEPS):
        micro = batches[step * ACCUM:(step + 1) * ACCUM]
        n_tokens = sum(int((torch.tensor(lab[:, 1:]) != -100).sum()) for _, lab, _, _ in micro)
        total = 0.0
        for ids, lab, pos, doc in micro:
            logits = forward(w, lora, torch.tensor(ids).long(), torch.tensor(pos).long(), torch.tensor(doc).long())
            tgt = torch.tensor(lab).long()[:, 1:]
            ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, CFG["vocab"]), tgt.reshape(-1),
                                                   ignore_index=-100, reduction="sum") / n_tokens
            ce.backward()
            total += ce.item()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        for gr in opt.param_groups: gr["lr"] = lr_at(step, STEPS)
        opt.step(); opt.zero_grad()
        losses.append(total)
    final = {k: v.detach() for k, v in (lora if lora is not None else w).items()}
    return losses, final


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if a.dtype == np.int32: raw, dt = a.astype("<i4").tobytes(), "I32"
        else: raw, dt = a.astype("<f4").tobytes(), "F32"
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw); off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)


def main():
    init = init_weights()
    batches = make_batches()
    g = torch.Generator().manual_seed(3)
    lora_init = {}
    for l in range(CFG["layers"]):
        for name in TARGETS:
            mod = f"model.layers.{l}.{'self_attn' if name.endswith(('q_proj','k_proj','v_proj','o_proj')) else 'mlp'}.{name}"
            out_f, in_f = init[mod + ".weight"].shape
            lora_init[mod + ".lora_A.weight"] = (torch.rand(RANK, in_f, generator=g) * 2 - 1) / math.sqrt(in_f)
            lora_init[mod + ".lora_B.weight"] = torch.zeros(out_f, RANK)

    full_losses, full_final = train(init, batches)
    lora_losses, lora_final = train(init, batches, lora_init)

    tensors = {}
    for k, v in init.items(): tensors["init." + k] = v.numpy()
    for k, v in lora_init.items(): tensors["lora_init." + k] = v.numpy()
    for k, v in full_final.items(): tensors["full_final." + k] = v.numpy()
    for k, v in lora_final.items(): tensors["lora_final." + k] = v.numpy()
    for i, (ids, lab, pos, doc) in enumerate(batches):
        for n, a in (("ids", ids), ("labels", lab), ("positions", pos), ("documents", doc)):
            tensors[f"batch.{i}.{n}"] = a
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "steps.safetensors"), tensors)
    meta = dict(config=CFG, batch=B, seq=T, accumulation=ACCUM, steps=STEPS, lr=LR, weight_decay=WD, warmup=WARMUP,
                clip=CLIP, rank=RANK, alpha=ALPHA, full_losses=full_losses, lora_losses=lora_losses)
    with open(os.path.join(OUT, "steps.json"), "w") as f: json.dump(meta, f, indent=1)
    print("full:", [round(x, 4) for x in full_losses[:3]], "...", round(full_losses[-1], 4))
    print("lora:", [round(x, 4) for x in lora_losses[:3]], "...", round(lora_losses[-1], 4))


if __name__ == "__main__":   # tools/golden/continual_ewc.py imports the model above
    main()
