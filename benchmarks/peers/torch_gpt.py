#!/usr/bin/python3
"""PyTorch peer of benchmarks/bench_gpt.cpp: the same GPT training step, float32, eager.

Model: vocab 96, context 64, width 128, 4 heads, 4 pre-norm blocks (x + attn(ln1(x)),
x + mlp(ln2(x)), MLP 512 with GELU(approximate='tanh')), final LayerNorm, untied LM head
without bias: the module of tests/golden/make_gpt_golden.py (the same state_dict names as
ctdl::models::gpt, checked against ctdl there). Attention is written out as nanoGPT's slow
path (torch 1.13 has no scaled_dot_product_attention): one QKV Linear, q kᵀ / sqrt(hd),
causal mask, softmax, @ v, output Linear.

Step: opt.zero_grad(set_to_none=True); loss = F.cross_entropy(net(x).view(-1, V), y.view(-1));
      loss.backward(); opt.step()    (AdamW lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0.01)
Data: token ids and targets [16, 64], uniform in [0, 96). tokens/s = 16·64 / step time.

Each case is timed with time.perf_counter: a warm-up, then REPEATS repeats of enough steps to
last about --repeat-s seconds each; the time of a case is the median of the repeats.

PyTorch is given every chance, and its best setting per thread count is reported:
  * threads: torch.set_num_threads(t) and OMP_NUM_THREADS=t. Debian's torch runs its GEMMs in
    OpenBLAS (pthreads build), whose own pool is set with OPENBLAS_NUM_THREADS: t, or 1 when
    t > 1; with t > 1 also OMP_WAIT_POLICY=PASSIVE;
  * interop: torch.set_num_interop_threads(1) or its default (each in its own process);
  * OpenBLAS kernels: OPENBLAS_CORETYPE forced to the CPU's real kernel (harness.native_coretype:
    SkylakeX with AVX-512, else Haswell; Debian's OpenBLAS 0.3.21 does not know Zen 5) and, when
    the environment names another one, that one too;
  * variants: AdamW default (per-tensor loop) and AdamW(foreach=True); the masked_fill mask
    as a registered buffer, so that it is not rebuilt per step.

Run with Debian's python (/usr/bin/python3). Prints JSON on stdout:
  {"cases": [{"case", "batch", "threads", "us", "setting", "all": {setting: us}}], ...}
"""
import argparse
import json
import math
import sys

import harness  # peers/harness.py (this folder is on sys.path when run as a script)

V, CTX, D, HEADS, LAYERS, MLP, BATCH, T = 96, 64, 128, 4, 4, 512, 16, 64


def gpt_factory(sdpa=False, vocab=V):
    """make_net() for the GPT above, as an nn.Sequential (the module names of ctdl::models::gpt:
    "2.<block>.0.1.qkv", "2.<block>.0.1.proj" are the attention projections). sdpa=True computes
    attention with F.scaled_dot_product_attention(is_causal=True) (torch 2.x; peers/peft_step.py
    tries both). vocab: the token ids (V by default; peers/peft_step.py gives the pretraining
    example's 1024). Imports torch: call it in the worker, once the environment is set."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Residual(nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    class Positions(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(CTX, D))

        def forward(self, x):
            return x + self.weight[: x.shape[-2]]

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(D, 3 * D)
            self.proj = nn.Linear(D, D)
            self.register_buffer("mask", torch.ones(CTX, CTX, dtype=torch.bool).triu(1), persistent=False)

        def forward(self, x):
            b, t, d = x.shape
            hd = d // HEADS
            q, k, v = self.qkv(x).split(d, dim=-1)
            q, k, v = (z.view(b, t, HEADS, hd).transpose(1, 2) for z in (q, k, v))
            if sdpa:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
                s = s.masked_fill(self.mask[:t, :t], float("-inf"))
                o = F.softmax(s, dim=-1) @ v
            return self.proj(o.transpose(1, 2).reshape(b, t, d))

    def make_net():
        def block():
            return nn.Sequential(
                Residual(nn.LayerNorm(D), Attention()),
                Residual(nn.LayerNorm(D), nn.Linear(D, MLP), nn.GELU(approximate="tanh"), nn.Linear(MLP, D)))
        return nn.Sequential(nn.Embedding(vocab, D), Positions(), nn.Sequential(*[block() for _ in range(LAYERS)]),
                             nn.LayerNorm(D), nn.Linear(D, vocab, bias=False))

    return make_net


def worker(threads, interop, repeats, repeat_s):
    import torch
    import torch.nn.functional as F

    if interop != "default":
        torch.set_num_interop_threads(int(interop))
    torch.set_num_threads(threads)
    torch.manual_seed(7)
    make_net = gpt_factory()

    def time_it(step):
        return harness.time_it(step, repeats, repeat_s, warmup=3, probe_s=0.2)

    g = torch.Generator().manual_seed(1234)
    x = torch.randint(0, V, (BATCH, T), generator=g)
    y = torch.randint(0, V, (BATCH, T), generator=g)
    results = []
    for variant, kw in (("adamw", {}), ("adamw_foreach", {"foreach": True})):
        net = make_net()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, **kw)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x).view(-1, V), y.view(-1))
            loss.backward()
            opt.step()

        results.append({"case": "train", "batch": BATCH, "threads": threads, "interop": f"interop={interop}",
                        "variant": variant, "us": time_it(step)})
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    ap.add_argument("--interop", default="default,1", help="interop settings to try (default: default,1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--repeat-s", type=float, default=0.3, help="seconds per repeat (default 0.3)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        json.dump(worker(int(args.threads), args.interop, args.repeats, args.repeat_s), sys.stdout)
        return

    coretypes = harness.coretypes()
    runs = harness.run_workers(__file__, args, coretypes)

    import torch
    cases = []
    for t in [int(s) for s in args.threads.split(",")]:
        mine = [r for r in runs if r["threads"] == t]
        best = min(mine, key=lambda r: r["us"])
        cases.append({"case": "train", "batch": BATCH, "threads": t, "us": best["us"], "setting": best["setting"],
                      "all": {r["setting"]: r["us"] for r in mine}})
    json.dump({"torch": torch.__version__, "openblas_coretypes": coretypes,
               "tokens_per_step": BATCH * T, "cases": cases}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
