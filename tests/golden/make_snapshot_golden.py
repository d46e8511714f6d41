#!/usr/bin/python3
"""Writes the safetensors files that tests/test_snapshot.cpp loads, using PyTorch and
the safetensors package (`pip install safetensors`), so the C++ reader is checked
against the reference writer. Run from anywhere; the files land beside this script.

The model is a PyTorch nn.Sequential(Linear(4, 3), ReLU(), Linear(3, 2)) state_dict:
  0.weight [3, 4], 0.bias [3], 2.weight [2, 3], 2.bias [2]
The value of element i (row-major) of the k-th tensor, in state_dict order, is

    ((i * 37 + k * 11) % 101 - 50) / 64

which every dtype here holds exactly, so C++ recomputes it bit for bit.

`make_snapshot_golden.py --check FILE...` instead loads files (e.g. written by ctdl::save)
with safetensors.torch.load_file and prints their tensors and metadata: a manual check
that PyTorch reads what ctdl writes.
"""
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def state_dict(dtype):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).to(dtype)
    sd = {}
    for k, (name, p) in enumerate(net.state_dict().items()):
        i = torch.arange(p.numel(), dtype=torch.int64)
        values = (((i * 37 + k * 11) % 101) - 50).to(torch.float64) / 64
        sd[name] = values.reshape(p.shape).to(dtype).contiguous()
    return sd


def main():
    meta = {"step": "42", "note": "written by PyTorch"}
    save_file(state_dict(torch.float32), os.path.join(HERE, "snapshot_torch.safetensors"), metadata=meta)
    save_file(state_dict(torch.float64), os.path.join(HERE, "snapshot_torch_f64.safetensors"), metadata=meta)


def check(paths):
    from safetensors import safe_open
    from safetensors.torch import load_file
    for path in paths:
        with safe_open(path, framework="pt") as f:
            print(path, "metadata:", f.metadata())
        for name, t in load_file(path).items():
            print(f"  {name} {t.dtype} {list(t.shape)} {t.flatten()[:6].tolist()}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check(sys.argv[2:])
    else:
        main()
