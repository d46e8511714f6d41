#!/usr/bin/python3
"""Loads a snapshot written by ctdl (ctdl_mlp_seed7.safetensors) into the equivalent PyTorch
nn.Sequential through the safetensors package, strictly (every name, shape and dtype must
fit), runs it on the golden batch and stores the logits for the C++ test to compare:
  torch_logits_for_ctdl_snapshot.safetensors
Run with Debian's python3-torch: /usr/bin/python3 tests/golden/check_ctdl_snapshot.py
"""
import os

import torch
from safetensors.torch import load_file, save_file

here = os.path.dirname(os.path.abspath(__file__))
net = torch.nn.Sequential(
    torch.nn.Linear(784, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 10))
net.load_state_dict(load_file(os.path.join(here, "ctdl_mlp_seed7.safetensors")), strict=True)
x = load_file(os.path.join(here, "mlp_data.safetensors"))["x"]
with torch.no_grad():
    logits = net(x)
save_file({"logits": logits}, os.path.join(here, "torch_logits_for_ctdl_snapshot.safetensors"))
print("logits[0]", logits[0].tolist())
