#!/usr/bin/python3
"""Writes the safetensors files that tests/test_snapshot.cpp loads, using PyTorch and
the safetensors package (`pip install safetensors`), so the C++ reader is checked
against the reference writer. Run from anywhere; the files land beside this script.

The model is a PyTorch nn.Sequential(Linear(4, 3), ReLU(), Linear(3, 2)) state_dict:
  0.weight [3, 4], 0.bias [3], 2.weight [2, 3], 2.bias [2]
The value of element i (row-major) of the k-th tensor, in state_dict order, is

    ((i * 37 + k * 11) % 101 - 50) / 64

which every dtype here holds exactly, so C++ recomputes it bit for bit.

It also writes the same state_dict in float16 and bfloat16 (and one with bfloat16 biases
and float32 weights), with special values (subnormals, infinities, -0, NaNs) in 0.weight,
each beside torch's float32 widening of it (`*_as_f32.safetensors`, `t.to(torch.float32)`),
and widen_torch.safetensors: every 16-bit pattern of both dtypes with torch's float32 for it.

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


def from_bits(bits, dtype):
    """A 16-bit float tensor with the given bit patterns (ints in [0, 65536))."""
    b = torch.tensor(bits, dtype=torch.int32)
    return torch.where(b >= 32768, b - 65536, b).to(torch.int16).view(dtype)


# Special values written over the first elements of 0.weight (12 elements): subnormals,
# infinities, signed zeros, NaNs (a quiet one with a payload, a signalling one: torch
# quiets a half's signalling NaN as it widens, keeps a bfloat16's), the extremes.
SPECIAL = {
    torch.float16: [0x0001, 0x03FF, 0x8001, 0x7C00, 0xFC00, 0x8000, 0x7E01, 0x7C01, 0x7BFF, 0x0400, 0xFBFF, 0x3555],
    torch.bfloat16: [0x0001, 0x007F, 0x8001, 0x7F80, 0xFF80, 0x8000, 0x7FC1, 0x7F81, 0x7F7F, 0x0080, 0xFF7F, 0x3EAB],
}


def state_dict_16(dtype, mixed=False):
    """The state_dict in a 16-bit dtype (mixed: only the biases in it, the weights F32),
    with SPECIAL over 0.weight's elements."""
    sd = state_dict(torch.float32)
    out = {}
    for name, t in sd.items():
        if mixed and name.endswith("weight"):
            out[name] = t
            continue
        t = t.to(dtype)
        if name == "0.weight":
            t = from_bits(SPECIAL[dtype], dtype).reshape(t.shape)
        out[name] = t.contiguous()
    return out


def widened(sd):
    """What torch makes of every tensor as float32: the exact widening ctdl must reproduce."""
    return {name: t.to(torch.float32).contiguous() for name, t in sd.items()}


def main():
    meta = {"step": "42", "note": "written by PyTorch"}
    save_file(state_dict(torch.float32), os.path.join(HERE, "snapshot_torch.safetensors"), metadata=meta)
    save_file(state_dict(torch.float64), os.path.join(HERE, "snapshot_torch_f64.safetensors"), metadata=meta)

    # 16-bit snapshots and torch's float32 widening of each (tests/test_snapshot.cpp loads
    # both into a float model and compares the bits).
    for tag, dtype, mixed in [("f16", torch.float16, False), ("bf16", torch.bfloat16, False),
                              ("mixed_bf16", torch.bfloat16, True)]:
        sd = state_dict_16(dtype, mixed)
        save_file(sd, os.path.join(HERE, f"snapshot_torch_{tag}.safetensors"), metadata=meta)
        save_file(widened(sd), os.path.join(HERE, f"snapshot_torch_{tag}_as_f32.safetensors"))

    # Every 16-bit pattern, in order, and torch's float32 for each.
    every = list(range(65536))
    all_patterns = {}
    for tag, dtype in [("f16", torch.float16), ("bf16", torch.bfloat16)]:
        t = from_bits(every, dtype)
        all_patterns[tag] = t
        all_patterns[tag + ".f32"] = t.to(torch.float32)
    save_file(all_patterns, os.path.join(HERE, "widen_torch.safetensors"),
              metadata={"torch": torch.__version__})


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
