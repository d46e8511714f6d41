#!/usr/bin/python3
"""Golden data for the contract's MLP (784-256-256-10, ReLU, cross-entropy), from PyTorch.

Writes, next to this script:
  mlp_init.safetensors     the initial weights (state_dict names and layouts)
  mlp_data.safetensors     x [16, 784] float32, y [16] int32
  mlp_step.safetensors     logits [16, 10], loss [1], and the gradients after one backward
                           (named like the weights, prefixed "grad.")
  mlp_adamw10.safetensors  the weights after 10 AdamW steps (lr 1e-3, weight decay 1e-2)
The C++ tests (tests/test_golden.cpp) compare against these files; they never run Python.
Run with Debian's python3-torch: /usr/bin/python3 tests/golden/make_mlp_golden.py
"""
import os

import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20261129)
net = torch.nn.Sequential(
    torch.nn.Linear(784, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 10))
x = torch.rand(16, 784)
# A learnable rule, as in the contract: the index of the largest of the first ten features.
y = x[:, :10].argmax(dim=1)

save_file({k: v.contiguous() for k, v in net.state_dict().items()}, os.path.join(here, "mlp_init.safetensors"))
save_file({"x": x, "y": y.to(torch.int32)}, os.path.join(here, "mlp_data.safetensors"))

logits = net(x)
loss = torch.nn.functional.cross_entropy(logits, y)
loss.backward()
step = {"logits": logits.detach(), "loss": loss.detach().reshape(1)}
for k, p in net.named_parameters():
    step["grad." + k] = p.grad.detach().clone()
save_file(step, os.path.join(here, "mlp_step.safetensors"))

opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
opt.zero_grad()
for _ in range(10):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, os.path.join(here, "mlp_adamw10.safetensors"))
print("loss", loss.item())
