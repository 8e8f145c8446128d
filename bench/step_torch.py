#!/usr/bin/python3
"""The PyTorch side of the preset step benchmark (bench/step.ts): one training step of each
preset, with the views given, on the same networks, heads, losses, optimisers, batch and crop
sizes as the tfjs presets at 32x32x3 (their small-image defaults).

  /usr/bin/python3 bench/step_torch.py --methods simclr,byol [--threads 2] [--reps 5]
  /usr/bin/python3 bench/step_torch.py --serve --threads 2     (what bench/step.ts runs)

The presets come from the learning benchmark's twin (scripts/twin/twin.py): its SmallConvNet
(here with 3 input channels) and method classes, whose train_step is SslMethod.trainStep's
(buffers saved, forward, backward, finiteness probe read back, optimiser step, state updates).
Added here: simclrV2 (SimCLR with simclrV2Projector), MoCo v3 after a ViT (3-layer projector,
predictor ending in a batch norm without affine parameters, tau 0.2) and tinyVit. As in
bench/step.ts, SwAV's prototypes and DINO's last layer are trainable from the first step.

Prints one JSON line per preset: {"method", "ms": [each timed step], "median", ...}. With
--serve it first prints {"ready": true, "torch", "threads", ...}, then answers each JSON request
line {"method", "views": [[B, H, W, C], ...], "warmup", "reps"} with one such line.
"""
import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "twin"))
import twin  # noqa: E402

BATCH = 128
DATASET_SIZE = 60000
VIT_PRESETS = {"mocoV3", "dino"}
GLOBAL, LOCAL = [BATCH, 32, 32, 3], [BATCH, 14, 14, 3]
# The views of each preset's recipe at 32 px (bench/step.ts sends them from the presets).
DEFAULT_VIEWS = {
    "swav": [GLOBAL] * 2 + [LOCAL] * 6,
    "dino": [GLOBAL] * 2 + [LOCAL] * 8,
    "instDisc": [GLOBAL],
}
OPTIONS = {"datasetSize": DATASET_SIZE, "freezePrototypesSteps": 0,
           "freezeLastLayerUntil": {"step": 0}}
# simclrV2 has SimCLR's optimiser defaults (SIMCLR_DEFAULTS).
twin.PRESET_DEFAULTS.setdefault("simclrV2", twin.PRESET_DEFAULTS["simclr"])


class Block(nn.Module):
    """tinyVit's pre-norm block: x + attention(LN(x)), then x + MLP(LN(x)) (GELU, erf)."""

    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = ((q * (d // h) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    """src/layers/backbones.ts tinyVit (defaults): 4x4 patches by a strided convolution (frozen
    unless `train_patch`, as DINO's trainPatchProjection sets it), class token and position
    embeddings learned for the 8x8 grid (resized bilinearly, half-pixel centres, for other
    grids: the 14 px local crops give 3x3), 4 blocks of width 64 with 4 heads and MLP 128, a final
    layer norm, the class token's output."""

    def __init__(self, channels=3, size=32, patch=4, dim=64, depth=4, heads=4, mlp_ratio=2,
                 train_patch=False):
        super().__init__()
        self.grid = size // patch
        self.patch = nn.Conv2d(channels, dim, patch, stride=patch)
        self.patch.requires_grad_(train_patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, dim))
        for p in (self.cls, self.pos):
            nn.init.trunc_normal_(p, 0.0, 0.02, -0.04, 0.04)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio * dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.out_dim = dim

    def forward(self, x):
        x = self.patch(x)
        b, d, h, w = x.shape
        pos = self.pos
        if (h, w) != (self.grid, self.grid):
            grid = pos[:, 1:].reshape(1, self.grid, self.grid, d).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
            pos = torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], 1)
        x = torch.cat([self.cls.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], 1) + pos
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]


class SimCLRv2(twin.SimCLR):
    """src/methods/simclr-v2.ts without the memory network (its default): SimCLR with
    simclrV2Projector, dense(F) -> BN -> ReLU, dense(F) -> BN -> ReLU, dense(128) -> BN without
    offset."""

    name = "simclrV2"

    def __init__(self, encoder, opts, seed):
        twin.Method.__init__(self, encoder, opts, seed)
        self.temperature = opts.get("temperature", 0.1)
        f = self.f
        self.projector = twin.mlp_head(f, [(f, True, True), (f, True, True),
                                           (128, dict(center=False), False)])
        self.setup_optimizer()


class MoCoV3ViT(twin.MoCoV3):
    """src/methods/moco-v3.ts after a ViT (backbone 'vit'): projector 3 layers F -> 2F -> 2F ->
    min(256, F), BN + ReLU between and a BN without affine last, no biases; predictor 2 layers
    ending in a BN without affine; tau 0.2."""

    def __init__(self, encoder, opts, seed):
        twin.Method.__init__(self, encoder, opts, seed)
        self.base_momentum = opts.get("momentum", 0.99)
        self.temperature = opts.get("temperature", 0.2)
        f = self.f
        hidden, out = 2 * f, min(256, f)
        no_affine = dict(center=False, scale=False)
        self.projector = twin.mlp_head(f, [(hidden, True, True), (hidden, True, True),
                                           (out, no_affine, False)])
        self.predictor = twin.mlp_head(out, [(hidden, True, True), (out, no_affine, False)])
        self.target_encoder = twin.frozen_copy(self.encoder)
        self.target_projector = twin.frozen_copy(self.projector)
        self.setup_optimizer()


def build(name, memory_format):
    torch.manual_seed(0)
    if name in VIT_PRESETS:
        encoder = TinyViT(train_patch=name == "dino")
    else:
        encoder = twin.SmallConvNet(3, (32, 64, 128)).to(memory_format=memory_format)
    cls = {"simclrV2": SimCLRv2, "mocoV3": MoCoV3ViT}.get(name) or twin.METHODS.get(name)
    if cls is None:
        raise ValueError(f"unknown preset {name}")
    method = cls(encoder, dict(OPTIONS), 0)
    for m in method.networks():
        m.train()
    return method


def time_steps(name, views_nhwc, warmup, reps, memory_format):
    """The ms of `reps` training steps after `warmup` ones, the views [B, H, W, C] given."""
    method = build(name, memory_format)
    fmt = torch.contiguous_format if name in VIT_PRESETS else memory_format
    g = torch.Generator().manual_seed(1)
    views = [torch.rand(b, c, h, w, generator=g).contiguous(memory_format=fmt)
             for b, h, w, c in views_nhwc]
    batch = views[0].shape[0]
    images = torch.empty(batch, 3, 32, 32)
    method.augment = lambda _images: views
    method.batch_indices = torch.arange(batch)
    ms = []
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        loss = method.train_step(images, 0.5)
        elapsed = 1000 * (time.perf_counter() - t0)
        if loss is None or not math.isfinite(loss):
            raise RuntimeError(f"{name}: step skipped (non-finite loss)")
        if i >= warmup:
            ms.append(elapsed)
    return ms


def reply(name, views, warmup, reps, memory_format):
    try:
        ms = time_steps(name, views, warmup, reps, memory_format)
        return {"method": name, "ms": ms, "median": sorted(ms)[len(ms) // 2],
                "views": views, "encoder": "tinyVit" if name in VIT_PRESETS else "smallConvNet"}
    except Exception as e:  # noqa: BLE001 - reported to bench/step.ts as the preset's error
        return {"method": name, "error": f"{type(e).__name__}: {e}"}


def blas():
    """Which BLAS torch's dense layers run on, and its float32 GFLOP/s on a 512^3 product. Debian's
    torch is built with BLAS_INFO=generic: it calls whatever libblas.so.3 the system's
    alternatives point to (the reference BLAS unless OpenBLAS or BLIS is installed)."""
    info = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    name = info.group(1) if info else "unknown"
    if name == "generic":
        name = f"generic -> {os.path.realpath('/usr/lib/x86_64-linux-gnu/libblas.so.3')}"
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    a @ b
    t0 = time.perf_counter()
    for _ in range(3):
        a @ b
    return name, 2 * 512**3 * 3 / (time.perf_counter() - t0) / 1e9


def main(argv):
    p = argparse.ArgumentParser(description="PyTorch side of bench/step.ts")
    p.add_argument("--methods", default="simclr,simclrV2,moco,mocoV2,mocoV3,byol,simsiam,swav,"
                   "dino,instDisc,invaSpread")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--memory-format", choices=["channels_last", "contiguous"],
                   default="channels_last")
    p.add_argument("--serve", action="store_true",
                   help="read JSON requests from stdin, one a line (bench/step.ts)")
    args = p.parse_args(argv)
    twin.configure_threads(args.threads)
    memory_format = (torch.channels_last if args.memory_format == "channels_last"
                     else torch.contiguous_format)

    def emit(obj):
        print(json.dumps(obj), flush=True)

    blas_name, gflops = blas()
    emit({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
          "interopThreads": torch.get_num_interop_threads(), "memoryFormat": args.memory_format,
          "blas": blas_name, "blasGflops": round(gflops, 1)})
    if args.serve:
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            emit(reply(req["method"], req["views"], int(req.get("warmup", args.warmup)),
                       int(req.get("reps", args.reps)), memory_format))
        return
    for name in args.methods.split(","):
        views = DEFAULT_VIEWS.get(name, [GLOBAL] * 2)
        emit(reply(name, views, args.warmup, args.reps, memory_format))


if __name__ == "__main__":
    main(sys.argv[1:])
