#!/usr/bin/python3
"""Golden fixtures for the Llama-family models (issue 3).

Writes tests/fixtures/models/<name>/ for each model in MODELS, each in float32 and bf16:
  config.json, model.safetensors          tiny random checkpoint in Hugging Face layout
  expected.json                           inputs, logits, next-token log-probs, loss, greedy continuations
and tests/fixtures/models/llama_gqa_f32/lora/ and lora_rs/ (PEFT-layout adapters, non-zero B) with their own
expected.json for the base model plus the adapter.

The reference below is written from the Hugging Face modeling descriptions (transformers is not installed
here): RMSNorm computed in float32, rotate_half RoPE (linear and llama3 frequency scaling), grouped-query
attention by repeat_kv, Mistral's sliding window (query i sees keys j with i-W < j <= i), SwiGLU MLP,
Qwen2 q/k/v biases, tied embeddings. bf16 checkpoints are computed in float32 from their bf16 values,
which is what InstructTune does. Run: /usr/bin/python3 tools/golden/models_make.py
"""
import json, math, os, struct
import numpy as np
import torch

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "models")

MODELS = {
    "llama_gqa": dict(model_type="llama", vocab_size=96, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                      max_position_embeddings=64, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2),
    "qwen2_tied": dict(model_type="qwen2", vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=1000000.0,
                       max_position_embeddings=64, tie_word_embeddings=True, use_sliding_window=False,
                       sliding_window=4, max_window_layers=2, eos_token_id=[2, 3]),
    "mistral_sw": dict(model_type="mistral", vocab_size=96, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                       max_position_embeddings=64, tie_word_embeddings=False, sliding_window=5),
    "llama3_rope": dict(model_type="llama", vocab_size=96, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=24, rms_norm_eps=1e-5,
                        rope_theta=500000.0, max_position_embeddings=64, tie_word_embeddings=False,
                        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                          original_max_position_embeddings=16)),
}
ARCH = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}


# ---------------------------------------------------------------- safetensors (numpy writer)
def write_safetensors(path, tensors):
    """tensors: dict name -> torch tensor (float32 or bfloat16). Writes header + raw little-endian data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype == torch.bfloat16:
            raw, dt = t.view(torch.int16).numpy().astype("<i2").tobytes(), "BF16"
        else:
            raw, dt = t.float().numpy().astype("<f4").tobytes(), "F32"
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- reference model
def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def inv_freq(c):
    hd = head_dim(c)
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    rs = c.get("rope_scaling")
    if rs is None:
        return inv
    if rs["rope_type"] == "linear":
        return inv / rs["factor"]
    assert rs["rope_type"] == "llama3"
    factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
    low_wl, high_wl = old / lo, old / hi
    wavelen = 2 * math.pi / inv
    inv_l = torch.where(wavelen > low_wl, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
    return torch.where(medium, smoothed, inv_l)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rms_norm(x, w, eps):
    x32 = x.float()
    var = x32.pow(2).mean(-1, keepdim=True)
    return w * (x32 * torch.rsqrt(var + eps))


def lin(W, x, name, lora):
    y = x @ W[name + ".weight"].t()
    if name + ".bias" in W:
        y = y + W[name + ".bias"]
    if lora is not None and name in lora["A"]:
        y = y + (x @ lora["A"][name].t()) @ lora["B"][name].t() * lora["scale"]
    return y


def forward(c, W, ids, lora=None):
    """ids: list of ints (one unpadded sequence). Returns logits [T, V] in float32."""
    T = len(ids)
    H, KV, hd = c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    pos = torch.arange(T).float()
    freqs = pos[:, None] * inv_freq(c)[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    win = c.get("sliding_window") if c["model_type"] == "mistral" else (
        c.get("sliding_window") if c.get("use_sliding_window") else None)
    if win is not None:
        allowed = allowed & (j > i - win)
    mask = torch.zeros(T, T).masked_fill(~allowed, float("-inf"))
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], c["rms_norm_eps"])
        q = lin(W, h, p + "self_attn.q_proj", lora).view(T, H, hd).transpose(0, 1)
        k = lin(W, h, p + "self_attn.k_proj", lora).view(T, KV, hd).transpose(0, 1)
        v = lin(W, h, p + "self_attn.v_proj", lora).view(T, KV, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)  # repeat_kv: query head h uses kv head h // (H/KV)
        v = v.repeat_interleave(H // KV, dim=0)
        s = q @ k.transpose(1, 2) * hd ** -0.5 + mask
        a = torch.softmax(s.float(), dim=-1) @ v
        a = a.transpose(0, 1).reshape(T, H * hd)
        x = x + lin(W, a, p + "self_attn.o_proj", lora)
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], c["rms_norm_eps"])
        g = lin(W, h, p + "mlp.gate_proj", lora)
        u = lin(W, h, p + "mlp.up_proj", lora)
        x = x + lin(W, torch.nn.functional.silu(g) * u, p + "mlp.down_proj", lora)
    x = rms_norm(x, W["model.norm.weight"], c["rms_norm_eps"])
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return x @ head.t()


def make_weights(c, g):
    V, D, F = c["vocab_size"], c["hidden_size"], c["intermediate_size"]
    H, KV, hd = c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    W = {}
    rn = lambda *s, std: torch.randn(*s, generator=g) * std
    W["model.embed_tokens.weight"] = rn(V, D, std=0.5)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        W[p + "input_layernorm.weight"] = 1 + rn(D, std=0.2)
        W[p + "post_attention_layernorm.weight"] = 1 + rn(D, std=0.2)
        W[p + "self_attn.q_proj.weight"] = rn(H * hd, D, std=1.5 / math.sqrt(D))
        W[p + "self_attn.k_proj.weight"] = rn(KV * hd, D, std=1.5 / math.sqrt(D))
        W[p + "self_attn.v_proj.weight"] = rn(KV * hd, D, std=1 / math.sqrt(D))
        W[p + "self_attn.o_proj.weight"] = rn(D, H * hd, std=1 / math.sqrt(H * hd))
        if c["model_type"] == "qwen2":
            for n, o in (("q", H * hd), ("k", KV * hd), ("v", KV * hd)):
                W[p + f"self_attn.{n}_proj.bias"] = rn(o, std=0.3)
        W[p + "mlp.gate_proj.weight"] = rn(F, D, std=1 / math.sqrt(D))
        W[p + "mlp.up_proj.weight"] = rn(F, D, std=1 / math.sqrt(D))
        W[p + "mlp.down_proj.weight"] = rn(D, F, std=1 / math.sqrt(F))
    W["model.norm.weight"] = 1 + rn(D, std=0.2)
    if not c["tie_word_embeddings"]:
        W["lm_head.weight"] = rn(V, D, std=0.5)
    return W


def logprobs_and_loss(logits, ids):
    lp = torch.log_softmax(logits.double(), dim=-1)
    nxt = [lp[t, ids[t + 1]].item() for t in range(len(ids) - 1)]
    return nxt, -sum(nxt) / len(nxt)


def greedy(c, W, prompt, n, lora=None):
    ids, margins = list(prompt), []
    for _ in range(n):
        last = forward(c, W, ids, lora)[-1]
        top2 = torch.topk(last, 2).values
        margins.append((top2[0] - top2[1]).item())
        ids.append(int(last.argmax()))
    return ids[len(prompt):], min(margins)


def expected(c, W, g, lora=None):
    V = c["vocab_size"]
    seqs = [torch.randint(3, V, (n,), generator=g).tolist() for n in (12, 9, 1)]
    out = {"sequences": []}
    for s in seqs:
        logits = forward(c, W, s, lora)
        lp, loss = logprobs_and_loss(logits, s) if len(s) > 1 else ([], None)
        out["sequences"].append({"ids": s, "logits": logits.tolist(), "next_token_logprobs": lp, "loss": loss})
    prompts = [torch.randint(3, V, (n,), generator=g).tolist() for n in (5, 3)]
    out["greedy"] = []
    for pr in prompts:
        gen, margin = greedy(c, W, pr, 10, lora)
        assert margin > 1e-3, f"greedy step too close to a tie ({margin}); change the seed"
        out["greedy"].append({"prompt_ids": pr, "generated_ids": gen, "min_top2_margin": margin})
    return out


def save_model(dirname, c, W, dtype):
    os.makedirs(dirname, exist_ok=True)
    cfg = dict(c)
    cfg["architectures"] = [ARCH[c["model_type"]]]
    cfg["hidden_act"] = "silu"
    cfg["torch_dtype"] = "bfloat16" if dtype == torch.bfloat16 else "float32"
    with open(os.path.join(dirname, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(dirname, "model.safetensors"), {k: v.to(dtype) for k, v in W.items()})


def make_lora(dirname, c, g, rank, alpha, rslora, targets):
    os.makedirs(dirname, exist_ok=True)
    A, B, tensors = {}, {}, {}
    for l in range(c["num_hidden_layers"]):
        for t in targets:
            mod = "self_attn" if t.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            name = f"model.layers.{l}.{mod}.{t}"
            dims = {"q_proj": (64, head_dim(c) * c["num_attention_heads"]), "v_proj": (64, head_dim(c) * c["num_key_value_heads"]),
                    "down_proj": (c["intermediate_size"], 64), "o_proj": (head_dim(c) * c["num_attention_heads"], 64)}[t]
            fin, fout = dims
            A[name] = torch.randn(rank, fin, generator=g) / math.sqrt(fin)
            B[name] = torch.randn(fout, rank, generator=g) * 0.3
            tensors[f"base_model.model.{name}.lora_A.weight"] = A[name]
            tensors[f"base_model.model.{name}.lora_B.weight"] = B[name]
    write_safetensors(os.path.join(dirname, "adapter_model.safetensors"), tensors)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0,
           "target_modules": targets, "use_rslora": rslora, "bias": "none", "fan_in_fan_out": False,
           "base_model_name_or_path": "llama_gqa_f32", "inference_mode": True}
    with open(os.path.join(dirname, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    scale = alpha / math.sqrt(rank) if rslora else alpha / rank
    return {"A": A, "B": B, "scale": scale}


def main():
    for i, (name, c) in enumerate(MODELS.items()):
        for dtype, suffix in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
            g = torch.Generator().manual_seed(1234 + i)
            W = make_weights(c, g)
            W = {k: v.to(dtype).float() for k, v in W.items()}  # the values the checkpoint holds
            d = os.path.join(ROOT, f"{name}_{suffix}")
            save_model(d, c, W, dtype)
            exp = expected(c, W, g)
            with open(os.path.join(d, "expected.json"), "w") as f:
                json.dump(exp, f)
            lg = np.array(exp["sequences"][0]["logits"])
            print(f"{name}_{suffix}: logits std {lg.std():.2f} max {abs(lg).max():.2f}, greedy margins "
                  f"{[round(x['min_top2_margin'], 4) for x in exp['greedy']]}")
            if name == "llama_gqa" and dtype == torch.float32:
                for sub, rslora, alpha in (("lora", False, 8), ("lora_rs", True, 4)):
                    lora = make_lora(os.path.join(d, sub), c, g, 4, alpha, rslora, ["q_proj", "v_proj", "o_proj", "down_proj"])
                    exp = expected(c, W, g, lora)
                    with open(os.path.join(d, sub, "expected.json"), "w") as f:
                        json.dump(exp, f)
                    print(f"  {sub}: scale {lora['scale']}")


if __name__ == "__main__":
    main()
