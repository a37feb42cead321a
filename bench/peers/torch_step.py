#!/usr/bin/env python3
"""PyTorch peer of the `step` bench: the same Llama decoder (HF modeling_llama structure: RMSNorm, rotate_half
RoPE, GQA via repeat_kv, eager causal attention, SwiGLU), random ids, AdamW, float32, torch.set_num_threads(2).
Prints one JSON line {"tokens_per_s": …, "peak_rss_mib": …, "step_s": …, "tokens_per_cpu_s": …, "loss": …}.
Usage: /usr/bin/python3 bench/peers/torch_step.py --config S|M|L [--steps N] [--warmup N]
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {  # dim, layers, heads, kv heads, ffn, vocab, seq, batch
    "S": (256, 4, 4, 4, 688, 4096, 256, 8),
    "M": (512, 8, 8, 4, 1376, 8192, 512, 4),
    "L": (768, 12, 12, 12, 2048, 32000, 512, 2),
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LoraLinear(nn.Module):
    """Frozen base Linear plus trainable A [r, in], B [out, r]: y = W x + (B (A x)) * alpha / r (PEFT's LoRA)."""
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.scale = base, alpha / r
        self.base.weight.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features).uniform_(-1, 1) / math.sqrt(base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale


class Layer(nn.Module):
    def __init__(self, d, h, kv, ffn):
        super().__init__()
        self.h, self.kv, self.hd = h, kv, d // h
        self.input_layernorm = RMSNorm(d)
        self.q_proj = nn.Linear(d, h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, kv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, kv * self.hd, bias=False)
        self.o_proj = nn.Linear(h * self.hd, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d)
        self.gate_proj = nn.Linear(d, ffn, bias=False)
        self.up_proj = nn.Linear(d, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.h // self.kv, dim=1)
        v = v.repeat_interleave(self.h // self.kv, dim=1)
        s = q @ k.transpose(2, 3) / math.sqrt(self.hd) + mask
        a = torch.softmax(s, dim=-1, dtype=torch.float32) @ v
        x = x + self.o_proj(a.transpose(1, 2).reshape(B, T, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, d, layers, h, kv, ffn, vocab):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Layer(d, h, kv, ffn) for _ in range(layers)])
        self.norm = RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.hd = d // h
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, labels):
        B, T = ids.shape
        inv = 1.0 / (10000.0 ** (torch.arange(0, self.hd, 2).float() / self.hd))
        freqs = torch.arange(T).float()[:, None] * inv[None]
        emb = torch.cat((freqs, freqs), -1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)[None, None]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="S")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lora", action="store_true", help="rank-8 LoRA on all seven projections, base frozen")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d, layers, h, kv, ffn, vocab, seq, batch = CONFIGS[a.config]
    model = Llama(d, layers, h, kv, ffn, vocab)
    if a.lora:
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in model.layers:
            for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
                setattr(layer, name, LoraLinear(getattr(layer, name), 8, 16.0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, vocab, (batch, seq))
    loss = None
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            t0 = time.perf_counter()
            c0 = time.process_time()
        loss = model(ids, ids)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"tokens_per_s": batch * seq * a.steps / dt, "peak_rss_mib": rss, "step_s": dt / a.steps,
                      "tokens_per_cpu_s": batch * seq * a.steps / cpu, "loss": float(loss)}))


if __name__ == "__main__":
    main()
