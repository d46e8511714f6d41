#!/usr/bin/python3
"""PyTorch peer of benchmarks/bench_mlp.cpp: the MLP 784-256-256-10 (Linear, ReLU, Linear,
ReLU, Linear), float32, the same cases with the same work.

  train  opt.zero_grad(set_to_none=True); loss = F.cross_entropy(net(x), y); loss.backward();
         opt.step()   (SGD lr 0.01, no momentum)                        batches 64 and 256
  infer  net(x) under torch.inference_mode()                            batches 1 and 64

Each case is timed with time.perf_counter: a warm-up, then REPEATS repeats of enough
iterations to last about --repeat-s seconds each; the time of a case is the median of the
repeats' per-iteration times.

PyTorch is given every chance, and its best setting per case is reported:
  * threads: torch.set_num_threads(t) and OMP_NUM_THREADS=t. Debian's torch runs its GEMMs in
    OpenBLAS (pthreads build), whose own pool is set with OPENBLAS_NUM_THREADS: t, or 1 when
    t > 1 (OpenBLAS's and OpenMP's workers then do not compete for the cores); with t > 1 also
    OMP_WAIT_POLICY=PASSIVE (sleeping workers, better on a loaded machine);
  * interop: torch.set_num_interop_threads(1) or left at its default (it can only be set
    before any parallel work, so each setting runs in its own process);
  * variants: training with the default SGD and with SGD(foreach=True); inference eager,
    torch.jit.trace + torch.jit.freeze, and trace + torch.jit.optimize_for_inference.

Run with Debian's python (/usr/bin/python3). Prints JSON on stdout:
  {"cases": [{"case", "batch", "threads", "us", "setting", "all": {setting: us}}], ...}
"""
import argparse
import json
import sys

import harness  # peers/harness.py (this folder is on sys.path when run as a script)

CASES = [("train", 64), ("train", 256), ("infer", 1), ("infer", 64)]


def worker(threads, interop, repeats, repeat_s):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    if interop != "default":
        torch.set_num_interop_threads(int(interop))
    torch.set_num_threads(threads)
    torch.manual_seed(7)

    def make_net():
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def time_it(step):
        return harness.time_it(step, repeats, repeat_s, warmup=5, probe_s=0.1)

    g = torch.Generator().manual_seed(1234)
    results = []
    for case, batch in CASES:
        x = torch.rand(batch, 784, generator=g)
        if case == "train":
            y = torch.randint(0, 10, (batch,), generator=g)
            for variant, kw in (("sgd", {}), ("sgd_foreach", {"foreach": True})):
                net = make_net()
                opt = torch.optim.SGD(net.parameters(), lr=0.01, **kw)

                def step():
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(net(x), y)
                    loss.backward()
                    opt.step()

                results.append({"case": case, "batch": batch, "threads": threads, "interop": f"interop={interop}",
                                "variant": variant, "us": time_it(step)})
        else:
            net = make_net().eval()
            for p in net.parameters():
                p.requires_grad_(False)
            variants = [("eager", net)]
            with torch.no_grad():
                traced = torch.jit.trace(net, x)
                variants.append(("jit_freeze", torch.jit.freeze(traced)))
                try:
                    variants.append(("jit_optimize_for_inference",
                                     torch.jit.optimize_for_inference(torch.jit.trace(net, x))))
                except Exception as e:  # an optional variant
                    print(f"torch_mlp: optimize_for_inference failed: {e}", file=sys.stderr)
            for variant, f in variants:
                with torch.inference_mode():
                    ref = net(x)
                    assert torch.allclose(f(x), ref, atol=1e-5), variant

                    def step():
                        return f(x)

                    us = time_it(step)
                results.append({"case": case, "batch": batch, "threads": threads, "interop": f"interop={interop}",
                                "variant": variant, "us": us})
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    ap.add_argument("--interop", default="default,1", help="interop settings to try (default: default,1)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--repeat-s", type=float, default=0.1, help="seconds per repeat (default 0.1)")
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
        for case, batch in CASES:
            mine = [r for r in runs if (r["case"], r["batch"], r["threads"]) == (case, batch, t)]
            best = min(mine, key=lambda r: r["us"])
            cases.append({"case": case, "batch": batch, "threads": t, "us": best["us"],
                          "setting": best["setting"],
                          "all": {r["setting"]: r["us"] for r in mine}})
    json.dump({"torch": torch.__version__, "openblas_coretypes": coretypes,
               "cases": cases}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
