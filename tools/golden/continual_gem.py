#!/usr/bin/python3
"""Golden fixture for the gradient projections of A-GEM and GEM (issue 17), from the papers' formulas, by brute force.

A-GEM (Chaudhry et al. 2019, eq. 11): g~ = g - (g.g_ref / g_ref.g_ref) g_ref when g.g_ref < 0.
GEM (Lopez-Paz & Ranzato 2017, eq. 10-13): g~ = argmin 1/2 |g~ - g|^2 s.t. <g~, g_k> >= 0; here solved as its dual
min_{v >= 0} 1/2 v'GG'v + g'G'v by projected gradient descent in float64 (200000 iterations, step 1/lambda_max), an
independent method from the active-set solution in src/InstructTune/Training/Continual/GradientProjection.cs.
Cases: 2 and 3 constraints (dimension 40), conflicting with every reference, and 3 where one constraint starts
satisfied; one A-GEM case.
Writes tests/fixtures/continual/gem.json.
Run: /usr/bin/python3 tools/golden/continual_gem.py
"""
import json, os
import torch

torch.manual_seed(11)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "continual")
D = 40


def f32(x): return x.float().double()   # values exactly representable in float32, as the C# side reads them


def gem_dual(g, G, iters=200000):
    K = G @ G.T
    step = 1.0 / torch.linalg.eigvalsh(K).max()
    v = torch.zeros(G.shape[0], dtype=torch.float64)
    for _ in range(iters):
        v = torch.clamp(v - step * (K @ v + G @ g), min=0.0)
    return g + G.T @ v, v


cases = []
for t, weights in ((2, [-0.6, -0.6]), (3, [-0.6, -0.6, -0.6]), (3, [-0.6, -0.2, 0.9])):
    G = f32(torch.randn(t, D, dtype=torch.float64))
    # weights < 0 make g conflict with that reference; the last case leaves one constraint slack or only mildly violated
    g = f32(torch.tensor(weights, dtype=torch.float64) @ G + 0.3 * torch.randn(D, dtype=torch.float64))
    proj, v = gem_dual(g, G)
    cases.append(dict(kind="gem", g=g.tolist(), refs=G.tolist(), projected=proj.tolist(), dual=v.tolist(),
                      dots_before=(G @ g).tolist(), dots_after=(G @ proj).tolist()))
ref = f32(torch.randn(D, dtype=torch.float64))
g = f32(-0.8 * ref + 0.5 * torch.randn(D, dtype=torch.float64))
proj = g - (g @ ref) / (ref @ ref) * ref
cases.append(dict(kind="agem", g=g.tolist(), refs=[ref.tolist()], projected=proj.tolist(), dots_before=[float(g @ ref)], dots_after=[float(proj @ ref)]))
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "gem.json"), "w") as f: json.dump(dict(dimension=D, cases=cases), f, indent=1)
for c in cases: print(c["kind"], len(c["refs"]), "dots before", [round(x, 3) for x in c["dots_before"]], "after", [round(x, 6) for x in c["dots_after"]])
