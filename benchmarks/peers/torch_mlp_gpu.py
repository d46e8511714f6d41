#!/usr/bin/env python3
"""PyTorch peer of benchmarks/bench_device_mlp.cu on the GPU: the MLP 784-256-256-10 (Linear,
ReLU, Linear, ReLU, Linear), float32, on CUDA, the same cases with the same work.

  train  opt.zero_grad(set_to_none=True); loss = F.cross_entropy(net(x), y); loss.backward();
         opt.step(); loss.item()   (SGD lr 0.01, no momentum)         batches 64 and 256
  infer  net(x) under torch.inference_mode(), then torch.cuda.synchronize()   batches 1 and 64

ctdl's train_step returns the loss, so each of its steps ends synchronized; the train
settings here read loss.item() every step for the same reason. Settings tried, the best per
case reported: SGD default / foreach / fused; inference eager and torch.jit.trace + freeze.
TF32 is off (torch.backends.cuda.matmul.allow_tf32 = False), as in ctdl's FP32 GEMMs.
An extra "train_async" setting (no loss.item(), one synchronize at the end) is listed in
"all" for reference but never chosen as the best: it does less than ctdl's step.

Prints JSON on stdout: {"torch", "device", "cases": [{"case", "batch", "us", "setting", "all"}]}.
Exits 3 when torch or a CUDA device is missing.
"""
import json
import statistics
import sys
import time

CASES = [("train", 64), ("train", 256), ("infer", 1), ("infer", 64)]


def main():
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        print("torch_mlp_gpu.py: no torch", file=sys.stderr)
        return 3
    if not torch.cuda.is_available():
        print("torch_mlp_gpu.py: torch sees no CUDA device", file=sys.stderr)
        return 3
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(7)

    def make_net():
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                             nn.Linear(256, 10)).to(dev)

    def time_it(step, repeats=5, repeat_s=0.15):
        for _ in range(10):
            step()
        torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.05:
            step()
            n += 1
        torch.cuda.synchronize()
        per = (time.perf_counter() - t0) / n
        iters = max(10, int(repeat_s / per))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(iters):
                step()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) / iters)
        return statistics.median(times) * 1e6

    g = torch.Generator().manual_seed(1234)
    results = []
    for case, batch in CASES:
        x = torch.rand(batch, 784, generator=g).to(dev)
        timings = {}
        if case == "train":
            y = torch.randint(0, 10, (batch,), generator=g).to(dev)
            for variant, kw in (("sgd", {}), ("sgd_foreach", {"foreach": True}), ("sgd_fused", {"fused": True})):
                net = make_net()
                try:
                    opt = torch.optim.SGD(net.parameters(), lr=0.01, **kw)
                except (TypeError, RuntimeError):
                    continue

                def step(net=net, opt=opt):
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(net(x), y)
                    loss.backward()
                    opt.step()
                    return loss.item()

                timings[variant] = time_it(step)
            net = make_net()
            opt = torch.optim.SGD(net.parameters(), lr=0.01)

            def step_async():
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                opt.step()

            async_us = time_it(step_async)
        else:
            net = make_net().eval()
            with torch.inference_mode():
                timings["eager"] = time_it(lambda: net(x))
            try:
                traced = torch.jit.freeze(torch.jit.trace(net, x).eval())
                with torch.inference_mode():
                    timings["jit_freeze"] = time_it(lambda: traced(x))
            except Exception as e:  # noqa: BLE001 - a setting that does not run is left out
                print(f"torch_mlp_gpu.py: jit trace+freeze failed: {e}", file=sys.stderr)
        best = min(timings, key=timings.get)
        all_settings = dict(timings)
        if case == "train":
            all_settings["train_async"] = async_us
        results.append({"case": case, "batch": batch, "us": timings[best], "setting": best, "all": all_settings})
    print(json.dumps({"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "cases": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
