"""The optimizer step of a real training loop on PyTorch, on the models of
`benches/train_step.rs`, for a side-by-side comparison in one session (compare ratios).

Usage: PYTHON tools/bench/torch_train_step.py [MODELS] [KEYS]
  PYTHON: an environment from ../shared/bench/setup-torch.sh (PyTorch 2.15, holocron 0.3.0)
  MODELS: comma-separated subset of bert, resnet (default both)
    bert    nn.TransformerEncoder, d_model 768, 12 heads, d_ff 3072, 12 layers: 192
            tensors, 85,054,464 parameters; one sequence of 8 tokens, MSE to a random target
    resnet  ResNet-18 for 32 x 32 images (3 x 3 stem, 64 to 512 channels, batch norm, a
            512 x 10 head): 62 tensors, 11,173,962 parameters; one 16 x 16 image, MSE
  KEYS:   comma-separated subset of torch-adamw-fused, torch-adamw-foreach, holocron-lars,
          holocron-lamb, holocron-ralars, holocron-tadam, holocron-adabelief,
          holocron-adamp, holocron-adan, holocron-ademamix (default: all)

As in the Rust benchmark: forward, backward, then only `opt.step()` timed; 6 warm-up steps,
then the mean of 12; 2 threads. Prints one line per model and optimizer: key, ms/step,
ns/param.

With BENCH_COLD_CACHE set (any value), as in the Rust benchmark, a 1 GiB buffer is written
twice before each timed step, so that the step finds little of the model in the last-level
cache (a diagnosis).
"""
import os
import sys
import time

import torch
from torch import nn
from holocron import optim as hoptim

torch.set_num_threads(2)


def bert():
    layer = nn.TransformerEncoderLayer(768, 12, 3072, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)

    def loss():
        x, target = torch.randn(1, 8, 768), torch.randn(1, 8, 768)
        return ((model(x) - target) ** 2).mean()

    return model, loss


class ConvNorm(nn.Sequential):
    def __init__(self, cin, cout, kernel, stride):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)
        )


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.first = ConvNorm(cin, cout, 3, stride)
        self.second = ConvNorm(cout, cout, 3, 1)
        self.projection = ConvNorm(cin, cout, 1, stride) if cin != cout or stride != 1 else None

    def forward(self, x):
        skip = x if self.projection is None else self.projection(x)
        return torch.relu(self.second(torch.relu(self.first(x))) + skip)


def resnet():
    blocks, cin = [], 64
    for stage, cout in enumerate([64, 128, 256, 512]):
        blocks += [Block(cin, cout, 1 if stage == 0 else 2), Block(cout, cout, 1)]
        cin = cout
    model = nn.Sequential(
        ConvNorm(3, 64, 3, 1), nn.ReLU(), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(512, 10),
    )

    def loss():
        x, target = torch.randn(1, 3, 16, 16), torch.randn(1, 10)
        return ((model(x) - target) ** 2).mean()

    return model, loss


def bench(model_name, key, build, make_opt):
    torch.manual_seed(0)
    model, loss = build()
    params = [p for p in model.parameters()]
    n = sum(p.numel() for p in params)
    opt = make_opt(params)
    times = []
    # 1 GiB of float32, written twice: see BENCH_COLD_CACHE above.
    eviction = torch.zeros(1 << 28) if os.environ.get("BENCH_COLD_CACHE") else None
    for step in range(6 + 12):
        opt.zero_grad(set_to_none=True)
        loss().backward()
        if eviction is not None:
            eviction.add_(1.0)
            eviction.add_(1.0)
        start = time.perf_counter()
        opt.step()
        if step >= 6:
            times.append(time.perf_counter() - start)
    mean = sum(times) / len(times)
    print(
        f"{model_name:7s} {key:22s} {mean * 1e3:9.2f} ms/step {mean * 1e9 / n:7.3f} ns/param"
        f"  params {n} tensors {len(params)}",
        flush=True,
    )


models = {"bert": bert, "resnet": resnet}
chosen = sys.argv[1].split(",") if len(sys.argv) > 1 else list(models)
only = sys.argv[2].split(",") if len(sys.argv) > 2 else None
want = lambda k: only is None or k in only
optimizers = [
    ("torch-adamw-fused", lambda p: torch.optim.AdamW(p, lr=1e-4, fused=True)),
    ("torch-adamw-foreach", lambda p: torch.optim.AdamW(p, lr=1e-4, foreach=True)),
]
for name in ["LARS", "LAMB", "RaLars", "TAdam", "AdaBelief", "AdamP", "Adan", "AdEMAMix"]:
    kw = {"momentum": 0.9} if name == "LARS" else {}
    cls = getattr(hoptim, name)
    optimizers.append(("holocron-" + name.lower(), lambda p, cls=cls, kw=kw: cls(p, lr=1e-4, **kw)))
for model_name in chosen:
    for key, make_opt in optimizers:
        if want(key):
            bench(model_name, key, models[model_name], make_opt)
