"""Shared helpers for the engine golden generators (imported, writes nothing itself).

hash_uniform is a counter-based generator (SplitMix64 of the element index) that the C# tests reimplement
bit for bit (tests/.../HashInit.cs), so large weight sets need not be stored in fixtures.
"""
import json
import numpy as np
import torch

GOLDEN = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1


def hash_uniform(seed, n):
    """n float32 values k/2^23 - 1 in [-1, 1), from SplitMix64(seed * GOLDEN + i + GOLDEN)."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64((seed * GOLDEN + GOLDEN) & M64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    k = (z >> np.uint64(40)).astype(np.int64)  # 24 bits
    return (k.astype(np.float32) / np.float32(1 << 23) - np.float32(1.0)).astype(np.float32)


def t2j(t):
    t = t.detach().contiguous()
    if t.dtype in (torch.int64, torch.int32):
        return {"shape": list(t.shape), "data": [int(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "data": [float(v) for v in t.float().reshape(-1).tolist()]}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    print("wrote", path)
