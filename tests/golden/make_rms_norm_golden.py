#!/work/venv/bin/python
"""Golden data for ctdl::nn::rms_norm<N, Eps> against torch.nn.RMSNorm (PyTorch >= 2.4).

The model mirrors the C++ test in tests/test_golden_layers.cpp:
  sequential<linear<8,16>, rms_norm<16>, gelu_tanh, linear<16,16>, rms_norm<16, std::ratio<1, 100000>>, linear<16,4>>
on x [2, 3, 8] (the leading axes are rows), float32, with the loss mse_loss(out, target).
It writes layers_rms_norm.safetensors next to this script, in the format of
make_layers_golden.py (param.<name>, x, target, out, loss, grad.<name>, dx).

torch.nn.RMSNorm came with PyTorch 2.4, newer than Debian's python3-torch (1.13), so this
script runs in a venv with PyPI's torch and safetensors:
  python3 -m venv /work/venv && /work/venv/bin/pip install torch safetensors numpy
  /work/venv/bin/python tests/golden/make_rms_norm_golden.py
"""
import torch
from torch import nn

from make_layers_golden import write  # the file format of the other layer cases



def nontrivial(rms):
    with torch.no_grad():
        rms.weight.copy_(1 + 0.2 * torch.randn_like(rms.weight))
    return rms


torch.manual_seed(20261202)
net = nn.Sequential(
    nn.Linear(8, 16), nontrivial(nn.RMSNorm(16, eps=1e-6)), nn.GELU(approximate="tanh"),
    nn.Linear(16, 16), nontrivial(nn.RMSNorm(16, eps=1e-5)), nn.Linear(16, 4))
write("rms_norm", net, torch.randn(2, 3, 8), torch.randn(2, 3, 4))
