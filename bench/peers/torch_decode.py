#!/usr/bin/python3
"""PyTorch peer for `bench decode`: the same Llama-style decoder (configs S/M/L of issue 2, random weights,
float32, 2 threads), prefill of one prompt of `seq` tokens and single-stream greedy decode with a
preallocated KV cache, under torch.inference_mode. Two styles: hf computes as transformers' Llama does
(nn.Linear = x @ Wᵀ, repeat_kv copies for GQA); tuned is the fastest plain PyTorch we found for one token
(torch.mv on the stored weight, GQA by reshaping the queries). --dtype bfloat16 holds weights, caches and
activations in bf16 and computes in bf16, as transformers does with torch_dtype=torch.bfloat16 (RMSNorm in
float32); the default float32 is also what transformers runs for a bf16 checkpoint loaded without torch_dtype
(weights upcast on load). Prints one JSON line:
{"peer":"pytorch","style":..,"config":..,"prefill_tokens_per_s":..,"decode_tokens_per_s":..,"peak_rss_mib":..}
Usage: /usr/bin/python3 bench/peers/torch_decode.py --config S [--style hf|tuned] [--decode-tokens 64]
       [--threads 2] [--warmup-s 2] [--dtype float32|bfloat16]"""
import argparse, json, math, resource, time
import torch

CONFIGS = {  # dim, layers, heads, kv heads, ffn, vocab, seq
    "S": (256, 4, 4, 4, 688, 4096, 256),
    "M": (512, 8, 8, 4, 1376, 8192, 512),
    "L": (768, 12, 12, 12, 2048, 32000, 512),
}


class Model:
    def __init__(self, D, L, H, KV, F, V, maxT, tuned=False, dtype=torch.float32):
        self.tuned, self.dtype = tuned, dtype
        g = torch.Generator().manual_seed(0)
        r = lambda *s: torch.randn(*s, generator=g) * 0.02
        self.D, self.H, self.KV, self.hd = D, H, KV, D // H
        self.emb, self.head, self.norm = r(V, D), r(V, D), torch.ones(D)
        self.layers = [dict(n1=torch.ones(D), n2=torch.ones(D), q=r(D, D), k=r(KV * self.hd, D), v=r(KV * self.hd, D),
                            o=r(D, D), g=r(F, D), u=r(F, D), d=r(D, F)) for _ in range(L)]
        inv = 1.0 / (10000 ** (torch.arange(0, self.hd, 2).float() / self.hd))
        f = torch.arange(maxT).float()[:, None] * inv[None, :]
        e = torch.cat((f, f), -1)
        self.cos, self.sin = e.cos(), e.sin()
        self.kc = [torch.zeros(KV, maxT, self.hd) for _ in range(L)]
        self.vc = [torch.zeros(KV, maxT, self.hd) for _ in range(L)]
        if dtype != torch.float32:
            c = lambda t: t.to(dtype)
            self.emb, self.head, self.norm, self.cos, self.sin = map(c, (self.emb, self.head, self.norm, self.cos, self.sin))
            self.layers = [{k: c(v) for k, v in l.items()} for l in self.layers]
            self.kc, self.vc = [c(t) for t in self.kc], [c(t) for t in self.vc]

    @staticmethod
    def rms(x, w):
        if x.dtype == torch.float32:
            return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))
        # transformers' LlamaRMSNorm for bf16 models: statistics in float32, result cast back.
        xf = x.float()
        return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype)

    @staticmethod
    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), -1)

    def linear(self, x, w):
        # hf: x @ wᵀ, what nn.Linear (F.linear) runs. tuned, one token: torch.mv streams W in its stored
        # [out, in] layout, about 4x faster here than the transposed-B GEMM that a single row dispatches to.
        return torch.mv(w, x[0]).unsqueeze(0) if self.tuned and x.shape[0] == 1 else x @ w.t()

    def forward(self, ids, start):
        T = ids.shape[0]
        g = self.H // self.KV
        x = self.emb[ids]
        cos, sin = self.cos[start:start + T], self.sin[start:start + T]
        for i, l in enumerate(self.layers):
            h = self.rms(x, l["n1"])
            q = self.linear(h, l["q"]).view(T, self.H, self.hd).transpose(0, 1)
            k = self.linear(h, l["k"]).view(T, self.KV, self.hd).transpose(0, 1)
            v = self.linear(h, l["v"]).view(T, self.KV, self.hd).transpose(0, 1)
            q = q * cos + self.rot(q) * sin
            k = k * cos + self.rot(k) * sin
            self.kc[i][:, start:start + T] = k
            self.vc[i][:, start:start + T] = v
            K, Vv = self.kc[i][:, :start + T], self.vc[i][:, :start + T]
            if self.tuned and T == 1:
                # GQA without copying the cache: the g query heads of a kv head form one [g, hd] block. (For
                # prefill this reshaped form measured 3x slower than repeat_kv here, so tuned keeps that.)
                s = q.reshape(self.KV, g, self.hd) @ K.transpose(1, 2) / math.sqrt(self.hd)
                a = (torch.softmax(s, -1) @ Vv).view(self.H, T, self.hd)
            else:
                # transformers' repeat_kv: every kv head copied g times, then plain multi-head attention.
                K, Vv = K.repeat_interleave(g, 0), Vv.repeat_interleave(g, 0)
                s = q @ K.transpose(1, 2) / math.sqrt(self.hd)
                if T > 1:
                    s = s + torch.full((T, start + T), float("-inf"), dtype=s.dtype).triu(start + 1)
                a = torch.softmax(s, -1) @ Vv
            a = a.transpose(0, 1).reshape(T, self.D)
            x = x + self.linear(a, l["o"])
            h = self.rms(x, l["n2"])
            x = x + self.linear(torch.nn.functional.silu(self.linear(h, l["g"])) * self.linear(h, l["u"]), l["d"])
        return self.linear(self.rms(x[-1:], self.norm), self.head)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="S")
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup-s", type=float, default=2.0)
    ap.add_argument("--style", choices=["hf", "tuned"], default="hf")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    D, L, H, KV, F, V, T = CONFIGS[a.config]
    m = Model(D, L, H, KV, F, V, T + a.decode_tokens + 16, tuned=a.style == "tuned",
              dtype=getattr(torch, a.dtype))
    ids = torch.randint(0, V, (T,), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        best_p = best_d = 0.0
        w0 = time.perf_counter()  # untimed warm-up, as the C# side does (allocator and thread pool settle)
        while time.perf_counter() - w0 < a.warmup_s:
            logits = m.forward(ids, 0)
            for i in range(a.decode_tokens):
                logits = m.forward(logits.argmax(-1), T + i)
        for _ in range(a.repeats):
            for _ in range(3):  # prefills per repeat, best kept (as the C# side)
                t0 = time.perf_counter()
                m.forward(ids, 0)
                best_p = max(best_p, T / (time.perf_counter() - t0))
            logits = m.forward(ids[:16], 0)
            t0 = time.perf_counter()
            for i in range(a.decode_tokens):
                nxt = logits.argmax(-1)
                logits = m.forward(nxt, 16 + i)
            best_d = max(best_d, a.decode_tokens / (time.perf_counter() - t0))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peer": "pytorch", "style": a.style, "dtype": a.dtype, "config": a.config, "prefill_tokens_per_s": round(best_p, 1),
                      "decode_tokens_per_s": round(best_d, 1), "peak_rss_mib": round(rss, 1)}))


if __name__ == "__main__":
    main()
