/**
 * @internal The colour, greyscale, blur and solarize steps of an augmentation view computed on
 * the host, in plain JavaScript loops over the backend's own memory, on the cpu and wasm backends.
 *
 * tfjs-backend-wasm 4.22 runs elementwise kernels single-threaded at about 80 M elements/s, and
 * every kernel call costs some tens of microseconds: the tensor form of one view (a hue rotation
 * alone is about 30 elementwise passes, each transform runs on a gathered subset of the batch,
 * the blur is a depthwise convolution at about 0.4 G multiply-adds/s) spent most of its time
 * there. Here each image meets its own steps in one loop per step, and the blur is a separable
 * convolution over rows held in float64. On wasm the input and the output are views of the wasm
 * heap (no copies); on cpu they are the backend's own arrays. On other backends (webgl, webgpu)
 * {@link hostAugment} answers `undefined` and the tensor operations of ops.ts run instead; the
 * two agree to float32 rounding (tests/augment/host.test.ts).
 *
 * Same definitions as ops.ts, per image: brightness clip(x b); contrast clip(c x + (1 - c) m) with
 * m the image's mean grey level; saturation clip(s x + (1 - s) grey); hue an HSV round trip with
 * the hue shifted (torchvision's adjust_hue), clipped; greyscale in every channel; Gaussian blur
 * with reflect padding, vertical then horizontal; solarize 1 - x where x >= threshold.
 */
import * as tf from '@tensorflow/tfjs-core';
import { heapOf } from '../core/kernels/host.js';
import { GREY_WEIGHTS, type Images, gaussianTaps } from './ops.js';

/** The four parts of colour jitter, in the order of {@link HostPlan.steps}. */
export type ColourOp = 'brightness' | 'contrast' | 'saturation' | 'hue';

/** One colour transform of one image: its factor (or, for hue, its shift). */
export interface ColourStep {
  readonly op: ColourOp;
  readonly value: number;
}

/** What happens to one image after its crop, in this order. */
export interface HostPlan {
  /** Colour transforms in the image's own order (neutral ones may be left out). */
  readonly steps: readonly ColourStep[];
  /** Greyscale in every channel. */
  readonly grey: boolean;
  /** Gaussian blur sigma in pixels; 0 = none. */
  readonly sigma: number;
  /** Solarize at the threshold. */
  readonly solarize: boolean;
}

let enabled = true;

/**
 * @internal Turns the host path off (so that the tensor operations run on cpu and wasm too, for
 * the tests that compare the two) or back on; returns the previous setting.
 */
export function setHostAugmentation(on: boolean): boolean {
  const before = enabled;
  enabled = on;
  return before;
}

/** @internal Whether {@link hostAugment} runs on the current backend (cpu or wasm, and not turned off). */
export function canAugmentOnHost(): boolean {
  const name = tf.getBackend();
  if (!enabled) return false;
  if (name === 'cpu') return true;
  return name === 'wasm' && heapOf(tf.backend()) !== undefined;
}

/** Host views of an input and a fresh output of the same shape, and how to make it a tensor. */
interface HostIo {
  readonly input: Float32Array;
  readonly output: Float32Array;
  readonly finish: () => Images;
}

function hostIo(images: Images): HostIo | undefined {
  if (!canAugmentOnHost() || images.dtype !== 'float32') return undefined;
  const backend = tf.backend();
  const shape = [...images.shape];
  const heap = tf.getBackend() === 'wasm' ? heapOf(backend) : undefined;
  if (heap !== undefined) {
    // The output first: allocating may grow the heap, which would invalidate earlier views.
    const info = heap.makeOutput(shape, 'float32');
    const output = heap.typedArrayFromHeap(info) as Float32Array;
    const input = heap.typedArrayFromHeap({
      dataId: images.dataId,
      shape,
      dtype: 'float32',
    }) as Float32Array;
    return { input, output, finish: () => tf.engine().makeTensorFromTensorInfo(info) as Images };
  }
  // cpu: the backend's own array (readSync copies nothing there), and tf.tensor4d keeps `output`.
  const input = backend.readSync(images.dataId) as Float32Array;
  const output = new Float32Array(input.length);
  return { input, output, finish: () => tf.tensor4d(output, images.shape) };
}

/**
 * @internal Applies plan i to image i of `images` (float32 [N, H, W, 1 | 3]) on the host, or
 * answers `undefined` on a backend without host access to its data (the caller then runs the
 * tensor operations). The input is not disposed.
 */
export function hostAugment(
  images: Images,
  plans: readonly HostPlan[],
  kernelSize: number,
  threshold: number,
): Images | undefined {
  const io = hostIo(images);
  if (io === undefined) return undefined;
  const [n, h, w, c] = images.shape;
  const size = h * w * c;
  const { input, output } = io;
  output.set(input.subarray(0, n * size));
  const blur = new Blur(h, w, c, kernelSize);
  for (let i = 0; i < n; i++) {
    const plan = plans[i];
    if (plan === undefined) continue;
    const x = output.subarray(i * size, (i + 1) * size);
    for (const { op, value } of plan.steps) {
      if (op === 'brightness') brightness(x, value);
      else if (op === 'contrast') contrast(x, c, value);
      else if (c === 3) {
        if (op === 'saturation') saturation(x, value);
        else hue(x, value);
      }
    }
    if (plan.grey && c === 3) toGrey(x);
    if (plan.sigma > 0) blur.apply(x, gaussianTaps(plan.sigma, kernelSize));
    if (plan.solarize) solarize(x, threshold);
  }
  return io.finish();
}

function clip(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function brightness(x: Float32Array, f: number): void {
  for (let i = 0; i < x.length; i++) x[i] = clip((x[i] as number) * f);
}

function contrast(x: Float32Array, c: number, f: number): void {
  const [wr, wg, wb] = GREY_WEIGHTS;
  let sum = 0;
  if (c === 3) {
    for (let i = 0; i < x.length; i += 3) {
      sum += wr * (x[i] as number) + wg * (x[i + 1] as number) + wb * (x[i + 2] as number);
    }
  } else {
    for (let i = 0; i < x.length; i++) sum += x[i] as number;
  }
  const offset = (sum / (x.length / c)) * (1 - f);
  for (let i = 0; i < x.length; i++) x[i] = clip((x[i] as number) * f + offset);
}

function saturation(x: Float32Array, f: number): void {
  const [wr, wg, wb] = GREY_WEIGHTS;
  const rest = 1 - f;
  for (let i = 0; i < x.length; i += 3) {
    const r = x[i] as number;
    const g = x[i + 1] as number;
    const b = x[i + 2] as number;
    const grey = (wr * r + wg * g + wb * b) * rest;
    x[i] = clip(r * f + grey);
    x[i + 1] = clip(g * f + grey);
    x[i + 2] = clip(b * f + grey);
  }
}

/** x - floor(x), as ops.ts's fraction. */
function fraction(v: number): number {
  return v - Math.floor(v);
}

/** RGB to HSV, the hue shifted by `shift` of a turn, back to RGB, clipped: ops.ts's adjustHue. */
function hue(x: Float32Array, shift: number): void {
  for (let i = 0; i < x.length; i += 3) {
    const r = x[i] as number;
    const g = x[i + 1] as number;
    const b = x[i + 2] as number;
    const v = r > g ? (r > b ? r : b) : g > b ? g : b;
    const min = r < g ? (r < b ? r : b) : g < b ? g : b;
    const delta = v - min;
    const s = delta / (v === 0 ? 1 : v);
    let h = 0;
    if (delta !== 0) {
      const rc = (v - r) / delta;
      const gc = (v - g) / delta;
      const bc = (v - b) / delta;
      h = v === r ? bc - gc : v === g ? 2 + rc - bc : 4 + gc - rc;
    }
    h = fraction(h / 6 + 1);
    const h6 = fraction(fraction(h + shift + 1)) * 6;
    const sector = Math.floor(h6);
    const f = h6 - sector;
    const p = v * (1 - s);
    const q = v * (1 - s * f);
    const t = v * (1 - s * (1 - f));
    // Sector 0..5 chooses among v, p, q, t for each channel (anything else: sector 5).
    let ro = v;
    let go = p;
    let bo = q;
    if (sector === 0) {
      go = t;
      bo = p;
    } else if (sector === 1) {
      ro = q;
      go = v;
      bo = p;
    } else if (sector === 2) {
      ro = p;
      go = v;
      bo = t;
    } else if (sector === 3) {
      ro = p;
      go = q;
      bo = v;
    } else if (sector === 4) {
      ro = t;
      bo = v;
    }
    x[i] = clip(ro);
    x[i + 1] = clip(go);
    x[i + 2] = clip(bo);
  }
}

function toGrey(x: Float32Array): void {
  const [wr, wg, wb] = GREY_WEIGHTS;
  for (let i = 0; i < x.length; i += 3) {
    const grey = wr * (x[i] as number) + wg * (x[i + 1] as number) + wb * (x[i + 2] as number);
    x[i] = grey;
    x[i + 1] = grey;
    x[i + 2] = grey;
  }
}

function solarize(x: Float32Array, threshold: number): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (v >= threshold) x[i] = 1 - v;
  }
}

/** Reflect padding (the edge pixel not repeated), as tf.mirrorPad(..., 'reflect'). */
function reflect(i: number, n: number): number {
  return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
}

/**
 * Adds to `acc[0 .. n)` the pairs k = 1 .. reach of taps: taps[k] (src[lo[k] + j] + src[hi[k] + j]),
 * three pairs per sweep over `acc` (fewer loads and stores of the accumulator).
 */
function addPairs(
  acc: Float64Array,
  src: Float32Array | Float64Array,
  taps: Float64Array,
  lo: Int32Array,
  hi: Int32Array,
  reach: number,
  n: number,
): void {
  let k = 1;
  for (; k + 2 <= reach; k += 3) {
    const [t1, t2, t3] = [taps[k] as number, taps[k + 1] as number, taps[k + 2] as number];
    const [a1, a2, a3] = [lo[k] as number, lo[k + 1] as number, lo[k + 2] as number];
    const [b1, b2, b3] = [hi[k] as number, hi[k + 1] as number, hi[k + 2] as number];
    for (let j = 0; j < n; j++) {
      acc[j] =
        (acc[j] as number) +
        t1 * ((src[a1 + j] as number) + (src[b1 + j] as number)) +
        t2 * ((src[a2 + j] as number) + (src[b2 + j] as number)) +
        t3 * ((src[a3 + j] as number) + (src[b3 + j] as number));
    }
  }
  for (; k <= reach; k++) {
    const t = taps[k] as number;
    const a = lo[k] as number;
    const b = hi[k] as number;
    for (let j = 0; j < n; j++) {
      acc[j] = (acc[j] as number) + t * ((src[a + j] as number) + (src[b + j] as number));
    }
  }
}

/**
 * The taps of one side of a symmetric kernel from the centre (taps[0] the centre), and how far
 * they reach: the outermost pairs whose weight together is below 2^-32 are left out (a Gaussian
 * of small sigma has 23 taps mostly of 1e-20 or less), which moves no output of an image in
 * [0, 1] by more than 2.4e-10, far below float32's resolution.
 */
function sideTaps(taps: Float32Array): { side: Float64Array; reach: number } {
  const half = (taps.length - 1) / 2;
  const side = Float64Array.from({ length: half + 1 }, (_, k) => taps[half + k] as number);
  let reach = half;
  let dropped = 0;
  while (reach > 0 && dropped + 2 * (side[reach] as number) < 2 ** -32) {
    dropped += 2 * (side[reach] as number);
    reach--;
  }
  return { side, reach };
}

/**
 * Separable Gaussian blur of one image in place, with buffers reused across images: rows are
 * summed in float64 with the symmetric taps paired (half the multiplications).
 */
class Blur {
  private readonly rows: Float32Array;
  private readonly acc: Float64Array;
  private readonly padded: Float64Array;
  private readonly half: number;
  private readonly lo: Int32Array;
  private readonly hi: Int32Array;

  constructor(
    private readonly h: number,
    private readonly w: number,
    private readonly c: number,
    kernelSize: number,
  ) {
    this.half = (kernelSize - 1) / 2;
    this.rows = new Float32Array(h * w * c);
    this.acc = new Float64Array(w * c);
    this.padded = new Float64Array((w + 2 * this.half) * c);
    this.lo = new Int32Array(this.half + 1);
    this.hi = new Int32Array(this.half + 1);
  }

  apply(x: Float32Array, taps: Float32Array): void {
    const { h, w, c, half, rows, acc, padded, lo, hi } = this;
    const { side, reach } = sideTaps(taps);
    const centre = side[0] as number;
    const line = w * c;
    // Vertical: row y of `rows` is the taps over rows y - reach .. y + reach of x (reflected).
    for (let y = 0; y < h; y++) {
      const at = y * line;
      for (let j = 0; j < line; j++) acc[j] = centre * (x[at + j] as number);
      for (let k = 1; k <= reach; k++) {
        lo[k] = reflect(y - k, h) * line;
        hi[k] = reflect(y + k, h) * line;
      }
      addPairs(acc, x, side, lo, hi, reach, line);
      rows.set(acc, at);
    }
    // Horizontal: each row reflected into `padded`, then the taps over columns.
    const pad = half * c;
    for (let k = 1; k <= reach; k++) {
      lo[k] = pad - k * c;
      hi[k] = pad + k * c;
    }
    for (let y = 0; y < h; y++) {
      const at = y * line;
      padded.set(rows.subarray(at, at + line), pad);
      for (let k = 1; k <= reach; k++) {
        const left = at + reflect(-k, w) * c;
        const right = at + reflect(w - 1 + k, w) * c;
        for (let ch = 0; ch < c; ch++) {
          padded[pad - k * c + ch] = rows[left + ch] as number;
          padded[pad + line + (k - 1) * c + ch] = rows[right + ch] as number;
        }
      }
      for (let j = 0; j < line; j++) acc[j] = centre * (padded[pad + j] as number);
      addPairs(acc, padded, side, lo, hi, reach, line);
      x.set(acc, at);
    }
  }
}
