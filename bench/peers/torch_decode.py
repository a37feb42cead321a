#!/usr/bin/python3
"""PyTorch peer for `bench decode`: the same Llama-style decoder (configs S/M/L of issue 2, random weights,
float32, 2 threads), prefill of one prompt of `seq` tokens and single-stream greedy decode with a
preallocated KV cache, under torch.inference_mode. Prints one JSON line:
{"peer":"pytorch","config":..,"prefill_tokens_per_s":..,"decode_tokens_per_s":..,"peak_rss_mib":..}
Usage: /usr/bin/python3 bench/peers/torch_decode.py --config S [--decode-tokens 64] [--threads 2]"""
import argparse, json, math, resource, time
import torch

CONFIGS = {  # dim, layers, heads, kv heads, ffn, vocab, seq
    "S": (256, 4, 4, 4, 688, 4096, 256),
    "M": (512, 8, 8, 4, 1376, 8192, 512),
    "L": (768, 12, 12, 12, 2048, 32000, 512),
}


class Model:
    def __init__(self, D, L, H, KV, F, V, maxT):
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

    @staticmethod
    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))

    @staticmethod
    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), -1)

    def forward(self, ids, start):
        T = ids.shape[0]
        x = self.emb[ids]
        cos, sin = self.cos[start:start + T], self.sin[start:start + T]
        for i, l in enumerate(self.layers):
            h = self.rms(x, l["n1"])
            q = (h @ l["q"].t()).view(T, self.H, self.hd).transpose(0, 1)
            k = (h @ l["k"].t()).view(T, self.KV, self.hd).transpose(0, 1)
            v = (h @ l["v"].t()).view(T, self.KV, self.hd).transpose(0, 1)
            q = q * cos + self.rot(q) * sin
            k = k * cos + self.rot(k) * sin
            self.kc[i][:, start:start + T] = k
            self.vc[i][:, start:start + T] = v
            K = self.kc[i][:, :start + T].repeat_interleave(self.H // self.KV, 0)
            Vv = self.vc[i][:, :start + T].repeat_interleave(self.H // self.KV, 0)
            s = q @ K.transpose(1, 2) / math.sqrt(self.hd)
            if T > 1:
                s = s + torch.full((T, start + T), float("-inf")).triu(start + 1)
            a = (torch.softmax(s, -1) @ Vv).transpose(0, 1).reshape(T, self.D)
            x = x + a @ l["o"].t()
            h = self.rms(x, l["n2"])
            x = x + (torch.nn.functional.silu(h @ l["g"].t()) * (h @ l["u"].t())) @ l["d"].t()
        return self.rms(x[-1:], self.norm) @ self.head.t()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="S")
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    D, L, H, KV, F, V, T = CONFIGS[a.config]
    m = Model(D, L, H, KV, F, V, T + a.decode_tokens + 16)
    ids = torch.randint(0, V, (T,), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        best_p = best_d = 0.0
        for _ in range(a.repeats):
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
    print(json.dumps({"peer": "pytorch", "config": a.config, "prefill_tokens_per_s": round(best_p, 1),
                      "decode_tokens_per_s": round(best_d, 1), "peak_rss_mib": round(rss, 1)}))


if __name__ == "__main__":
    main()
