/**
 * @internal Transposed matrix products and accurate large reductions for the wasm backend.
 *
 * tfjs-backend-wasm 4.22 runs BatchMatMul with a transpose flag at 0.4-1.8 GFLOP/s against about
 * 15 without (every dense layer's backward pass uses the flags), and _FusedMatMul with a flag plus
 * a bias or activation gives wrong values. Both are replaced by an explicit transpose, which is
 * fast, then the plain product.
 *
 * wasm's Sum accumulates each reduction in one float32 running sum: the mean of 1e6 copies of 0.1
 * comes out as 0.10096. Long reductions are split in two levels (blocks of about sqrt(R)), which
 * bounds the rounding error by about (2 sqrt R) eps instead of R eps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Attrs, type Info, type Scratch, need, prod } from './scratch.js';

function swapLast(rank: number): number[] {
  const perm = [...Array(rank).keys()];
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return perm;
}

/**
 * BatchMatMul or _FusedMatMul with the transposes done explicitly first. A plain BatchMatMul
 * with both flags is computed as (B A)^T: one transpose, of the output, instead of two.
 */
export function plainMatMul(
  s: Scratch,
  kernel: 'BatchMatMul' | '_FusedMatMul',
  inputs: Record<string, Info | undefined>,
  attrs: Attrs & { transposeA: boolean; transposeB: boolean },
): Info {
  const a = need(inputs, 'a');
  const b = need(inputs, 'b');
  if (kernel === 'BatchMatMul' && attrs.transposeA && attrs.transposeB) {
    const ba = s.run(kernel, { a: b, b: a }, { ...attrs, transposeA: false, transposeB: false });
    return s.transpose(ba, swapLast(ba.shape.length));
  }
  const operands: Record<string, Info> = {
    ...Object.fromEntries(
      Object.entries(inputs).filter((e): e is [string, Info] => e[1] !== undefined),
    ),
    a: attrs.transposeA ? s.transpose(a, swapLast(a.shape.length)) : a,
    b: attrs.transposeB ? s.transpose(b, swapLast(b.shape.length)) : b,
  };
  return s.run(kernel, operands, { ...attrs, transposeA: false, transposeB: false });
}

/** Reductions at least this long are done as a tree. */
const TREE_FROM = 1024;
/** The fan-in of each level of the tree. */
const FAN_IN = 16;
/**
 * Kept elements after the reduced axes from which a leading or middle reduction is done with
 * matrix products: wasm's Sum transposes such a tensor first, single-threaded (40 ms for
 * [131072, 32] -> [32], about half of batch norm's cost in a conv net's step), while a product
 * with a row of ones runs threaded in XNNPACK, 4-6x faster. Below 16 columns wasm's transpose is
 * cheap and its Sum as fast.
 */
const PRODUCT_FROM_COLUMNS = 16;

/**
 * Sums [lead, r, inner] over its middle axis as a tree of {@link FAN_IN} (zero-padded where a
 * level's length is not a multiple); returns [lead, inner]. With inner = 1 each level is wasm's
 * Sum over contiguous groups; otherwise a batched product of a [1, 1, k] row of ones with
 * [lead groups, k, inner] (plain products, no transpose; multiplying by one is exact, so the sums
 * are those of the same tree).
 */
function treeSum(s: Scratch, x: Info, lead: number, r: number, inner: number): Info {
  // [lead, length x inner]: padding the middle axis is padding the last one by (pad x inner).
  let level = s.reshape(x, [lead, r * inner]);
  let length = r;
  while (length > 1) {
    const k = Math.min(FAN_IN, length);
    const groups = Math.ceil(length / k);
    const padded = s.pad(level, [
      [0, 0],
      [0, (groups * k - length) * inner],
    ]);
    level =
      inner === 1
        ? s.run('Sum', { x: s.reshape(padded, [lead * groups, k]) }, { axis: [1], keepDims: false })
        : s.run(
            'BatchMatMul',
            { a: s.fill([1, 1, k], 1), b: s.reshape(padded, [lead * groups, k, inner]) },
            { transposeA: false, transposeB: false },
          );
    level = s.reshape(level, [lead, groups * inner]);
    length = groups;
  }
  return s.reshape(level, [lead, inner]);
}

/** The shape a reduction over `axes` leaves: those axes dropped, or kept as 1 (`keepDims`). */
export function reducedShape(
  shape: readonly number[],
  axes: readonly number[],
  keepDims: boolean,
): number[] {
  return keepDims
    ? shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : shape.filter((_, i) => !axes.includes(i));
}

/**
 * Sum or Mean of a float32 tensor with every reduction of R >= {@link TREE_FROM} elements done as
 * a tree of sums of {@link FAN_IN} elements: about log16(R) passes whose sizes shrink 16-fold, so
 * the cost stays close to one pass while the error grows with the depth of the tree instead of
 * with R. A reduction over consecutive axes followed by at least {@link PRODUCT_FROM_COLUMNS}
 * kept elements (batch norm's statistics and gradients) builds the same tree from matrix
 * products in place, at any length from 16; other reductions move their axes last first.
 * Undefined when the original kernel is as good (other dtypes, short reductions).
 */
export function accurateReduce(
  s: Scratch,
  x: Info,
  attrs: { axis: number | number[]; keepDims: boolean },
  mean: boolean,
): Info | undefined {
  if (x.dtype !== 'float32') return undefined;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape).sort((a, b) => a - b);
  const r = prod(axes.map((a) => x.shape[a] ?? 1));
  const first = axes[0] ?? 0;
  const last = axes[axes.length - 1] ?? 0;
  const inner = prod(x.shape.slice(last + 1));
  let level: Info;
  if (last - first + 1 === axes.length && inner >= PRODUCT_FROM_COLUMNS && r >= FAN_IN) {
    level = treeSum(s, x, prod(x.shape.slice(0, first)), r, inner);
  } else {
    if (r < TREE_FROM) return undefined;
    const perm = tf.backend_util.getAxesPermutation(axes, x.shape.length);
    const moved = perm === null ? x : s.transpose(x, perm);
    level = treeSum(s, moved, prod(x.shape) / r, r, 1);
  }
  let total = level;
  if (mean) total = s.run('RealDiv', { a: total, b: s.scalar(r) });
  return s.reshape(total, reducedShape(x.shape, axes, attrs.keepDims));
}
