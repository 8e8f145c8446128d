/**
 * @internal Convolution gradients built from the forward convolution, transpose, pad, reverse and
 * slice kernels, which are fast on wasm (XNNPACK) and on cpu. tfjs-backend-wasm 4.22 has no filter
 * gradient at all (no convolutional layer can train), no depthwise gradients, and an input
 * gradient about 10x slower than the forward convolution; the cpu backend's own filter gradient
 * is pathologically slow.
 *
 * For a convolution y = x * w with stride s and top/left padding p (NHWC, filter [kh, kw, ci, co]):
 * - dw[a, b, i, o] = sum over n, u, v of xpad[n, u s + a, v s + b, i] dy[n, u, v, o]: a convolution
 *   of x seen as [ci, H, W, n] (images = input channels, channels = batch) with dy seen as the
 *   filter [oh, ow, n, co], dilated by s. Its output [ci, kh, kw, co] is the gradient, transposed.
 * - dx = the stride-1 convolution of dy (zeros inserted between rows and columns when s > 1,
 *   padded by k - 1 - p) with the filter flipped in space and its channel axes swapped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type Scratch } from './scratch.js';
import { im2colT, simdKernels } from './simd.js';

type Padding = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Pair = [number, number];

interface ConvGeometry {
  /** Input batch, height, width and channels (NHWC). */
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly oh: number;
  readonly ow: number;
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly top: number;
  readonly left: number;
}

/** The geometry of a (depthwise) convolution of stride `strides` and dilation 1. */
function convGeometry(
  inShape: readonly number[],
  filterShape: readonly number[],
  attrs: { strides: Pair | number; pad: Padding; dimRoundingMode?: Rounding },
  depthwise = false,
): ConvGeometry {
  return geometry(
    tf.backend_util.computeConv2DInfo(
      inShape as [number, number, number, number],
      filterShape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      depthwise,
    ),
  );
}

function geometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    oh: info.outHeight,
    ow: info.outWidth,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

/**
 * Zeros inserted after every row and column of an NHWC tensor: [n, h, w, c] becomes
 * [n, h sh, w sw, c] with the original values at multiples of the strides.
 */
function dilate(s: Scratch, x: Info, sh: number, sw: number): Info {
  if (sh === 1 && sw === 1) return x;
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const spread = s.pad(s.reshape(x, [n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  return s.reshape(spread, [n, h * sh, w * sw, c]);
}

/**
 * The explicit padding that makes a stride-1 'valid' pass over an axis of length `length`, read
 * from offset `-before`, produce at least `need` windows of extent `extent`: [before, after] with
 * after >= 0. The caller slices any excess off the result.
 */
function span(length: number, before: number, extent: number, need: number): Pair {
  return [before, Math.max(0, need + extent - 1 - length - before)];
}

/** dw of Conv2D, [kh, kw, ci, co], from x [n, h, w, ci] and dy [n, oh, ow, co]. */
export function conv2dFilterGradient(
  s: Scratch,
  xIn: Info,
  dyIn: Info,
  attrs: {
    strides: Pair | number;
    pad: Padding;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: Rounding;
    filterShape: [number, number, number, number];
  },
): Info {
  const nchw = attrs.dataFormat === 'NCHW';
  const x = nchw ? s.transpose(xIn, NCHW_TO_NHWC) : xIn;
  const dy = nchw ? s.transpose(dyIn, NCHW_TO_NHWC) : dyIn;
  const g = convGeometry(x.shape, attrs.filterShape, attrs);
  const [ci, co] = [attrs.filterShape[2], attrs.filterShape[3]];
  if (g.sh === 1 && g.sw === 1 && x.dtype === 'float32') {
    const byColumns = filterGradientByColumns(s, x, dy, g, ci, co);
    if (byColumns !== undefined) return byColumns;
  }
  const images = s.transpose(x, [3, 1, 2, 0]); // [ci, h, w, n]
  const filter = s.transpose(dy, [1, 2, 0, 3]); // [oh, ow, n, co]
  // Window extent of the dilated filter: (o - 1) s + 1; kh (kw) windows needed.
  const rows = span(g.h, g.top, (g.oh - 1) * g.sh + 1, g.kh);
  const cols = span(g.w, g.left, (g.ow - 1) * g.sw + 1, g.kw);
  const full = s.run(
    'Conv2D',
    { x: images, filter },
    {
      strides: [1, 1],
      pad: [[0, 0], rows, cols, [0, 0]],
      dilations: [g.sh, g.sw],
      dataFormat: 'NHWC',
    },
  );
  const cropped = s.slice(full, [0, 0, 0, 0], [ci, g.kh, g.kw, co]);
  return s.transpose(cropped, [1, 2, 0, 3]);
}

/**
 * @internal At most `maxColumns` floats (256 MB) of columns at once: larger batches go in chunks
 * of images (a setting so that the tests can make chunks small).
 */
export const FILTER_GRADIENT_COLUMNS = { maxColumns: 64 * 1024 * 1024 };

/**
 * dw of a stride-1 Conv2D on wasm as one plain matrix product, [kh kw ci, n oh ow] x
 * [n oh ow, co]: the transposed columns are built by one SIMD kernel (row copies out of x seen as
 * [ci, n, h, w]). The product has a long inner dimension and a small output, where XNNPACK reads
 * its packed operand once per tile of rows; the convolution form above packs the same dy as a
 * 'filter' but pays for a large kernel window as well. Undefined off wasm (the caller's path).
 */
function filterGradientByColumns(
  s: Scratch,
  x: Info,
  dy: Info,
  g: ConvGeometry,
  ci: number,
  co: number,
): Info | undefined {
  const simd = simdKernels(s.backend);
  if (simd === undefined) return undefined;
  const taps = g.kh * g.kw * ci;
  const perImage = g.oh * g.ow;
  const chunk = Math.max(
    1,
    Math.min(g.n, Math.floor(FILTER_GRADIENT_COLUMNS.maxColumns / (taps * perImage))),
  );
  const xt = s.transpose(x, [3, 0, 1, 2]);
  const rows = s.reshape(dy, [g.n * perImage, co]);
  let total: Info | undefined;
  for (let first = 0; first < g.n; first += chunk) {
    const count = Math.min(chunk, g.n - first);
    const cols = s.own(im2colT(simd, xt, g, first, count));
    const part = s.slice(rows, [first * perImage, 0], [count * perImage, co]);
    const product = s.run(
      'BatchMatMul',
      {
        a: s.reshape(cols, [1, taps, count * perImage]),
        b: s.reshape(part, [1, count * perImage, co]),
      },
      { transposeA: false, transposeB: false },
    );
    total = total === undefined ? product : s.run('Add', { a: total, b: product });
  }
  return s.reshape(total ?? s.fill([taps, co], 0), [g.kh, g.kw, ci, co]);
}

/**
 * dx of Conv2D, [n, h, w, ci], from dy [n, oh, ow, co] and the filter [kh, kw, ci, co]. Returns
 * undefined when the padding exceeds the kernel (explicit paddings only), for the caller's
 * fallback.
 */
export function conv2dInputGradient(
  s: Scratch,
  dyIn: Info,
  filter: Info,
  attrs: {
    strides: Pair | number;
    pad: Padding;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: Rounding;
    inputShape: [number, number, number, number];
  },
): Info | undefined {
  const nchw = attrs.dataFormat === 'NCHW';
  const inputShape = (nchw ? NCHW_TO_NHWC.map((a) => attrs.inputShape[a]) : attrs.inputShape) as [
    number,
    number,
    number,
    number,
  ];
  const g = convGeometry(inputShape, filter.shape, attrs);
  if (g.top > g.kh - 1 || g.left > g.kw - 1) return undefined;
  const dy = nchw ? s.transpose(dyIn, NCHW_TO_NHWC) : dyIn;
  const flipped = s.transpose(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [0, 1, 3, 2]);
  const dx = stride1Correlation(s, dilate(s, dy, g.sh, g.sw), flipped, g, 'Conv2D');
  return nchw ? s.transpose(dx, NHWC_TO_NCHW) : dx;
}

/**
 * The stride-1 correlation of the (dilated) output gradient with a flipped filter, padded so that
 * output position i reads dy positions i + top - (k - 1) ... i + top, cropped to [n, h, w, c].
 */
function stride1Correlation(
  s: Scratch,
  spread: Info,
  filter: Info,
  g: ConvGeometry,
  kernel: 'Conv2D' | 'DepthwiseConv2dNative',
): Info {
  const [, sh, sw] = spread.shape as [number, number, number, number];
  const rows = span(sh, g.kh - 1 - g.top, g.kh, g.h);
  const cols = span(sw, g.kw - 1 - g.left, g.kw, g.w);
  const out = s.run(
    kernel,
    { x: spread, filter },
    { strides: [1, 1], pad: [[0, 0], rows, cols, [0, 0]], dilations: [1, 1], dataFormat: 'NHWC' },
  );
  const c = out.shape[3] as number;
  return s.slice(out, [0, 0, 0, 0], [g.n, g.h, g.w, c]);
}

interface DepthwiseAttrs {
  strides: Pair | number;
  dilations: Pair | number;
  pad: Padding;
  dimRoundingMode?: Rounding;
}

function unitDilations(d: Pair | number | undefined): boolean {
  return d === undefined || (typeof d === 'number' ? d === 1 : d[0] === 1 && d[1] === 1);
}

/**
 * dx of DepthwiseConv2dNative, [n, h, w, c], from dy [n, oh, ow, c m] and the filter [kh, kw, c, m].
 * Undefined for dilated convolutions and oversized explicit paddings (the caller falls back).
 */
export function depthwiseInputGradient(
  s: Scratch,
  dy: Info,
  filter: Info,
  attrs: DepthwiseAttrs & { inputShape: [number, number, number, number] },
): Info | undefined {
  if (!unitDilations(attrs.dilations)) return undefined;
  const fs = filter.shape as [number, number, number, number];
  const g = convGeometry(attrs.inputShape, fs, attrs, true);
  if (g.top > g.kh - 1 || g.left > g.kw - 1) return undefined;
  const [kh, kw, c, m] = fs;
  // Each of the c m output channels is its own depthwise channel with multiplier 1.
  const flipped = s.reshape(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [kh, kw, c * m, 1]);
  const perChannel = stride1Correlation(
    s,
    dilate(s, dy, g.sh, g.sw),
    flipped,
    g,
    'DepthwiseConv2dNative',
  );
  if (m === 1) return perChannel;
  const split = s.reshape(perChannel, [g.n, g.h, g.w, c, m]);
  return s.run('Sum', { x: split }, { axis: [4], keepDims: false });
}

/**
 * dw of DepthwiseConv2dNative, [kh, kw, c, m], from x [n, h, w, c] and dy [n, oh, ow, c m]: one
 * depthwise convolution of x seen as one image with n c channels by dy seen as an [oh, ow, n c, m]
 * filter dilated by the stride, summed over the batch.
 */
export function depthwiseFilterGradient(
  s: Scratch,
  x: Info,
  dy: Info,
  attrs: DepthwiseAttrs & { filterShape: [number, number, number, number] },
): Info | undefined {
  if (!unitDilations(attrs.dilations)) return undefined;
  const g = convGeometry(x.shape, attrs.filterShape, attrs, true);
  const [kh, kw, c, m] = attrs.filterShape;
  const image = s.reshape(s.transpose(x, [1, 2, 0, 3]), [1, g.h, g.w, g.n * c]);
  const filter = s.reshape(s.transpose(dy, [1, 2, 0, 3]), [g.oh, g.ow, g.n * c, m]);
  const rows = span(g.h, g.top, (g.oh - 1) * g.sh + 1, kh);
  const cols = span(g.w, g.left, (g.ow - 1) * g.sw + 1, kw);
  const full = s.run(
    'DepthwiseConv2dNative',
    { x: image, filter },
    { strides: [1, 1], pad: [[0, 0], rows, cols, [0, 0]], dilations: [g.sh, g.sw] },
  );
  const cropped = s.slice(full, [0, 0, 0, 0], [1, kh, kw, g.n * c * m]);
  const perImage = s.reshape(cropped, [kh, kw, g.n, c * m]);
  const summed =
    g.n === 1 ? perImage : s.run('Sum', { x: perImage }, { axis: [2], keepDims: false });
  return s.reshape(summed, [kh, kw, c, m]);
}
