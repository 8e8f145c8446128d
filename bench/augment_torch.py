"""The PyTorch side of bench/augment.ts: images/s of a per-image augmentation pipeline on 2 CPU
threads, for the same recipes, image sides and batch sizes as the TypeScript side.

torchvision is used when it is installed (its transforms v1 on float tensors, the usual
per-image pipeline of the papers' code). Debian's python3-torch comes without it; the pipeline is
then written here in plain torch ops, step for step what torchvision's tensor transforms do
(labelled "plain torch" in the output):

- RandomResizedCrop: torchvision's box sampler (10 tries of a uniform area and log-uniform ratio,
  else the centred box), then a bilinear resize with antialias (torchvision's tensor default);
- horizontal flip, p 0.5;
- ColorJitter with probability p: its four parts in a random order (torch.randperm), brightness
  and saturation as blends with black / the greyscale image, contrast with the mean grey level,
  hue as an RGB -> HSV -> RGB round trip with the hue shifted (torchvision's adjust_hue);
- greyscale, p 0.2 (ITU-R 601-2 luma in every channel);
- Gaussian blur: torchvision's 2-D kernel (the outer product of the 1-D one) as one grouped
  convolution with reflect padding, sigma uniform in [0.1, 2], kernel about 10% of the side;
- solarize at 0.5 where the recipe has it.

Run: /usr/bin/python3 bench/augment_torch.py [--quick] [--json]
"""

import argparse
import json
import math
import random
import sys
import time

import torch
import torch.nn.functional as F

try:
    import torchvision.transforms as T  # noqa: F401

    HAVE_TORCHVISION = True
except ImportError:
    HAVE_TORCHVISION = False

GREY = (0.2989, 0.587, 0.114)


def blur_kernel_size(side):
    k = max(3, int(math.floor(0.1 * side)))
    return k + 1 if k % 2 == 0 else k


def local_side(side):
    return max(4, round(96 / 224 * side))


def strong(p=0.8):
    return dict(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, p=p)


def byol_jitter():
    return dict(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8)


def simclr_recipe(side):
    return [dict(count=2, size=side, scale=(0.08, 1), jitter=strong(), grey=0.2, blur=0.5)]


def dino_recipe(side):
    common = dict(jitter=byol_jitter(), grey=0.2)
    return [
        dict(common, count=1, size=side, scale=(0.4, 1), blur=1.0, solarize=0),
        dict(common, count=1, size=side, scale=(0.4, 1), blur=0.1, solarize=0.2),
        dict(common, count=8, size=local_side(side), scale=(0.05, 0.4), blur=0.5, solarize=0),
    ]


# ---------------------------------------------------------------- plain torch, per image [C, H, W]


def crop_box(height, width, scale, ratio=(3 / 4, 4 / 3)):
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * random.uniform(*scale)
        aspect = math.exp(random.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return random.randint(0, height - h), random.randint(0, width - w), h, w
    in_ratio = width / height
    w, h = width, height
    if in_ratio < ratio[0]:
        h = round(w / ratio[0])
    elif in_ratio > ratio[1]:
        w = round(h * ratio[1])
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crop(img, scale, size):
    top, left, h, w = crop_box(img.shape[-2], img.shape[-1], scale)
    patch = img[:, top : top + h, left : left + w]
    return F.interpolate(
        patch[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )[0]


def grey_of(img):
    r, g, b = img.unbind(0)
    return (GREY[0] * r + GREY[1] * g + GREY[2] * b)[None]


def blend(a, b, ratio):
    return (ratio * a + (1 - ratio) * b).clamp(0, 1)


def rgb_to_hsv(img):
    r, g, b = img.unbind(0)
    maxc, _ = img.max(0)
    minc, _ = img.min(0)
    delta = maxc - minc
    grey = maxc == minc
    s = delta / torch.where(grey, torch.ones_like(maxc), maxc)
    safe = torch.where(grey, torch.ones_like(delta), delta)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2 + rc - bc, 4 + gc - rc))
    h = torch.fmod(h / 6 + 1, 1)
    return torch.stack((h, s, maxc))


def hsv_to_rgb(img):
    h, s, v = img.unbind(0)
    h6 = h * 6
    i = torch.floor(h6)
    f = h6 - i
    i = i.to(torch.int64) % 6
    p = (v * (1 - s)).clamp(0, 1)
    q = (v * (1 - s * f)).clamp(0, 1)
    t = (v * (1 - s * (1 - f))).clamp(0, 1)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = torch.empty_like(img)
    for ch in range(3):
        picked = table[5][ch]
        for k in range(4, -1, -1):
            picked = torch.where(i == k, table[k][ch], picked)
        out[ch] = picked
    return out


def adjust_hue(img, shift):
    hsv = rgb_to_hsv(img)
    hsv[0] = torch.fmod(hsv[0] + shift + 1, 1)
    return hsv_to_rgb(hsv)


def color_jitter(img, j):
    order = torch.randperm(4).tolist()
    b = random.uniform(max(0, 1 - j["brightness"]), 1 + j["brightness"])
    c = random.uniform(max(0, 1 - j["contrast"]), 1 + j["contrast"])
    s = random.uniform(max(0, 1 - j["saturation"]), 1 + j["saturation"])
    h = random.uniform(-j["hue"], j["hue"])
    for k in order:
        if k == 0:
            img = (img * b).clamp(0, 1)
        elif k == 1:
            img = blend(img, grey_of(img).mean(), c)
        elif k == 2:
            img = blend(img, grey_of(img), s)
        else:
            img = adjust_hue(img, h)
    return img


def gaussian_blur(img, kernel_size, sigma):
    half = (kernel_size - 1) / 2
    x = torch.linspace(-half, half, kernel_size)
    k1 = torch.exp(-0.5 * (x / sigma) ** 2)
    k1 = k1 / k1.sum()
    k2 = (k1[:, None] * k1[None, :]).expand(img.shape[0], 1, kernel_size, kernel_size)
    pad = kernel_size // 2
    padded = F.pad(img[None], [pad, pad, pad, pad], mode="reflect")
    return F.conv2d(padded, k2, groups=img.shape[0])[0]


def plain_view(img, spec):
    x = resized_crop(img, spec["scale"], spec["size"])
    if random.random() < 0.5:
        x = torch.flip(x, [-1])
    if random.random() < spec["jitter"]["p"]:
        x = color_jitter(x, spec["jitter"])
    if random.random() < spec["grey"]:
        x = grey_of(x).expand(3, -1, -1).contiguous()
    if random.random() < spec["blur"]:
        x = gaussian_blur(x, blur_kernel_size(spec["size"]), random.uniform(0.1, 2))
    if random.random() < spec.get("solarize", 0):
        x = torch.where(x >= 0.5, 1 - x, x)
    return x


# ---------------------------------------------------------------- torchvision, when installed


def torchvision_view(spec):
    j = spec["jitter"]
    steps = [
        T.RandomResizedCrop(spec["size"], scale=spec["scale"], antialias=True),
        T.RandomHorizontalFlip(),
        T.RandomApply(
            [T.ColorJitter(j["brightness"], j["contrast"], j["saturation"], j["hue"])], p=j["p"]
        ),
        T.RandomGrayscale(p=spec["grey"]),
        T.RandomApply(
            [T.GaussianBlur(blur_kernel_size(spec["size"]), sigma=(0.1, 2))], p=spec["blur"]
        ),
    ]
    if spec.get("solarize", 0) > 0:
        steps.append(T.RandomSolarize(0.5, p=spec["solarize"]))
    return T.Compose(steps)


def make_views(recipe):
    if HAVE_TORCHVISION:
        composed = [torchvision_view(spec) for spec in recipe]
        return lambda img: [c(img) for c, spec in zip(composed, recipe) for _ in range(spec["count"])]
    return lambda img: [plain_view(img, spec) for spec in recipe for _ in range(spec["count"])]


CASES = [
    # (name, recipe, side, batch, quick batch): the same as bench/augment.ts
    ("SimCLR, 2 views", simclr_recipe, 32, 256, 64),
    ("SimCLR, 2 views", simclr_recipe, 96, 128, 32),
    ("SimCLR, 2 views", simclr_recipe, 224, 64, 16),
    ("DINO, 2 + 8 views", dino_recipe, 224, 64, 16),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    random.seed(0)
    pipeline = "torchvision" if HAVE_TORCHVISION else "plain torch"
    for name, recipe_of, side, batch, quick_batch in CASES:
        n = quick_batch if args.quick else batch
        images = torch.rand(n, 3, side, side)
        views_of = make_views(recipe_of(side))
        with torch.no_grad():

            def run():
                t0 = time.perf_counter()
                for img in images:
                    views_of(img)
                return time.perf_counter() - t0

            run()  # warm-up
            seconds = min(run() for _ in range(3))
        row = dict(
            case=name,
            side=side,
            batch=n,
            ms=1000 * seconds,
            images_per_s=n / seconds,
            pipeline=pipeline,
            threads=torch.get_num_threads(),
            torch=torch.__version__,
        )
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"| {pipeline} | {name} | {side}x{side} | {n} | {row['ms']:.0f} | {row['images_per_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
