/**
 * @internal Kernels computed on the host in plain JavaScript over the backend's data. On wasm,
 * elementwise and layout kernels run single-threaded at about 80 M elements/s, and tfjs 4.22's
 * generic Tile and StridedSlice far slower (tiling a [1, 1, 1, 32] vector to 4 M elements takes
 * 460 ms; copying blocks on the host, 22 ms including the transfer), so for kernels that are
 * pure data movement or a scan a host loop beats any composition of wasm kernels.
 *
 * - MaxPoolGrad: tfjs-backend-wasm's own is wrong whenever batch or channels exceed 1. Each output
 *   sends its gradient to the first position of its window (row-major) holding the maximum, as
 *   on the cpu backend, so with ties (zeros after a ReLU) exactly one input receives it.
 * - Tile: used by the gradient of batch normalisation.
 * - UnsortedSegmentSum: missing on wasm (it is gather's gradient).
 * - GatherV2: about 2 M elements a second on wasm.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type BackendLike, type Info, prod } from './scratch.js';

type Values = Float32Array | Int32Array | Uint8Array;

/** The wasm backend's own access to its heap (public methods of tfjs-backend-wasm 4.22). */
export interface HeapBackend extends BackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(info: Info): Values;
}

/** `backend` as a heap backend (tfjs-backend-wasm), or undefined for any other backend. */
export function heapOf(backend: BackendLike): HeapBackend | undefined {
  const b = backend as Partial<HeapBackend>;
  return typeof b.makeOutput === 'function' && typeof b.typedArrayFromHeap === 'function'
    ? (b as HeapBackend)
    : undefined;
}

/**
 * Host access to a kernel's inputs and its output. On wasm the typed arrays are views of the
 * wasm heap (no copies: reading 16 MB out of a shared heap costs about 20 ms); the output is
 * allocated first, since growing the heap would invalidate earlier views. Elsewhere the inputs
 * are read and the output written back at the end. `accumulates`: the kernel adds into its output
 * (which must then start at zero) rather than writing every element.
 */
function hostCall(
  backend: BackendLike,
  inputs: readonly Info[],
  shape: number[],
  dtype: tf.DataType,
  accumulates: boolean,
): { ins: Values[]; out: Values; done: () => Info } {
  const heap = heapOf(backend);
  if (heap !== undefined) {
    const info = heap.makeOutput(shape, dtype);
    const out = heap.typedArrayFromHeap(info);
    // The wasm heap is not zeroed; only kernels that add into the output need it to be.
    if (accumulates) out.fill(0);
    return { ins: inputs.map((t) => heap.typedArrayFromHeap(t)), out, done: () => info };
  }
  const size = prod(shape);
  const out =
    dtype === 'int32'
      ? new Int32Array(size)
      : dtype === 'bool'
        ? new Uint8Array(size)
        : new Float32Array(size);
  return {
    ins: inputs.map((t) => backend.readSync(t.dataId) as Values),
    out,
    done: () => ({ dataId: backend.write(out, shape, dtype), shape, dtype }),
  };
}

export function maxPoolGradHost(
  backend: BackendLike,
  dy: Info,
  input: Info,
  attrs: tf.MaxPoolGradAttrs,
): Info {
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const io = hostCall(backend, [input, dy], [...input.shape], 'float32', true);
  const [x, g] = io.ins as [Float32Array, Float32Array];
  const dx = io.out as Float32Array;
  const [n, h, w, c] = input.shape as [number, number, number, number];
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let u = 0; u < oh; u++) {
      for (let v = 0; v < ow; v++) {
        best.fill(-Infinity);
        where.fill(-1);
        for (let i = 0; i < kh; i++) {
          const row = u * sh - top + i;
          if (row < 0 || row >= h) continue;
          for (let j = 0; j < kw; j++) {
            const col = v * sw - left + j;
            if (col < 0 || col >= w) continue;
            const base = ((b * h + row) * w + col) * c;
            for (let k = 0; k < c; k++) {
              const value = x[base + k] as number;
              if (value > (best[k] as number)) {
                best[k] = value;
                where[k] = base + k;
              }
            }
          }
        }
        const from = ((b * oh + u) * ow + v) * c;
        for (let k = 0; k < c; k++) {
          const to = where[k] as number;
          if (to >= 0) dx[to] = (dx[to] as number) + (g[from + k] as number);
        }
      }
    }
  }
  return io.done();
}

/**
 * Tile by block copies: the input is copied once into the output, then each axis, from the
 * last, repeats in place the blocks below it.
 */
export function tileHost(backend: BackendLike, x: Info, reps: readonly number[]): Info | undefined {
  if (x.dtype === 'string' || x.dtype === 'complex64') return undefined;
  const shape = x.shape.map((d, i) => d * (reps[i] ?? 1));
  const io = hostCall(backend, [x], shape, x.dtype, false);
  const src = io.ins[0] as Values;
  const out = io.out;
  // Place each innermost row of x at its position in the output, strided by the repetitions.
  const rank = x.shape.length;
  const row = x.shape[rank - 1] ?? 1;
  const rows = src.length / row;
  const index = new Array<number>(rank - 1).fill(0);
  for (let r = 0; r < rows; r++) {
    let offset = 0;
    for (let a = 0; a < rank - 1; a++) offset = offset * (shape[a] ?? 1) + (index[a] ?? 0);
    out.set(src.subarray(r * row, (r + 1) * row), offset * (shape[rank - 1] ?? 1));
    for (let a = rank - 2; a >= 0; a--) {
      index[a] = (index[a] ?? 0) + 1;
      if ((index[a] ?? 0) < (x.shape[a] ?? 1)) break;
      index[a] = 0;
    }
  }
  // Then, from the last axis up, copy the filled first block of each axis to its repetitions.
  for (let axis = rank - 1; axis >= 0; axis--) {
    const r = reps[axis] ?? 1;
    if (r === 1) continue;
    const block = prod(x.shape.slice(axis, axis + 1)) * prod(shape.slice(axis + 1));
    const stride = prod(shape.slice(axis));
    const outer = prod(x.shape.slice(0, axis));
    for (let o = 0; o < outer; o++) {
      const at = offsetOf(o, x.shape.slice(0, axis), shape.slice(0, axis)) * stride;
      // The first block repeated by doubling the filled span: log2(r) copies, not r - 1 (tiling
      // layer norm's [B, T, 1] statistics over 64 features was 64 one-element copies a row).
      const total = r * block;
      if (block === 1) out.fill(out[at] ?? 0, at, at + total);
      for (let filled = block; block > 1 && filled < total; filled *= 2) {
        out.copyWithin(at + filled, at, at + Math.min(filled, total - filled));
      }
    }
  }
  return io.done();
}

/**
 * Transpose of rank 5 or more by copies of the longest innermost run that the permutation keeps in
 * place (tfjs-backend-wasm 4.22 moves about 12 M elements a second at rank 5: the attention's
 * [B, T, 3, heads, d] -> [3, B, heads, T, d] took 16 ms for 200 k elements). Undefined below rank
 * 5, which the backend's own kernel does fast.
 */
export function transposeHost(
  backend: BackendLike,
  x: Info,
  perm: readonly number[],
): Info | undefined {
  const rank = x.shape.length;
  if (rank < 5 || x.dtype === 'string' || x.dtype === 'complex64') return undefined;
  // Trailing axes that stay in place form contiguous runs in input and output alike.
  let kept = 0;
  while (kept < rank && perm[rank - 1 - kept] === rank - 1 - kept) kept++;
  const run = prod(x.shape.slice(rank - kept));
  const outer = rank - kept;
  const outShape = perm.map((p) => x.shape[p] ?? 1);
  const io = hostCall(backend, [x], outShape, x.dtype, false);
  const src = io.ins[0] as Values;
  const out = io.out;
  // Input strides (in elements) of the output's outer axes, in output order.
  const inStrides = new Array<number>(rank).fill(1);
  for (let a = rank - 2; a >= 0; a--)
    inStrides[a] = (inStrides[a + 1] ?? 1) * (x.shape[a + 1] ?? 1);
  const strides = perm.slice(0, outer).map((p) => inStrides[p] ?? 1);
  forEachRun(outShape.slice(0, outer), strides, 0, (k, from) => {
    if (run === 1) out[k] = src[from] ?? 0;
    else out.set(src.subarray(from, from + run), k * run);
  });
  return io.done();
}

/**
 * Slice by copies of contiguous runs: the trailing axes taken whole and the partial axis before
 * them form one run per index of the axes above (slicing 8 rows of a [64, 65536] matrix is one
 * copy). tfjs-backend-wasm 4.22's own moves about 40 M elements a second.
 */
export function sliceHost(
  backend: BackendLike,
  x: Info,
  begin: readonly number[],
  size: readonly number[],
): Info | undefined {
  if (x.dtype === 'string' || x.dtype === 'complex64') return undefined;
  const rank = x.shape.length;
  if (rank === 0) return undefined;
  // Axes from `whole` on are taken whole; axis whole - 1 (if any) contributes a partial range.
  let whole = rank;
  while (whole > 0 && size[whole - 1] === x.shape[whole - 1] && begin[whole - 1] === 0) whole--;
  const lead = Math.max(0, whole - 1);
  const tail = prod(x.shape.slice(whole));
  const run = (whole === 0 ? 1 : (size[whole - 1] ?? 1)) * tail;
  const io = hostCall(backend, [x], [...size], x.dtype, false);
  const src = io.ins[0] as Values;
  const out = io.out;
  const strides = new Array<number>(rank).fill(1);
  for (let a = rank - 2; a >= 0; a--) strides[a] = (strides[a + 1] ?? 1) * (x.shape[a + 1] ?? 1);
  let from = 0;
  for (let a = 0; a < rank; a++) from += (begin[a] ?? 0) * (strides[a] ?? 1);
  forEachRun(size.slice(0, lead), strides, from, (k, at) => {
    out.set(src.subarray(at, at + run), k * run);
  });
  return io.done();
}

/**
 * Visits the k-th index (row-major) of the index space `dims` with the matching source offset:
 * `start` plus each axis' index times its source stride (an odometer, one addition a step).
 */
function forEachRun(
  dims: readonly number[],
  strides: readonly number[],
  start: number,
  visit: (k: number, from: number) => void,
): void {
  const index = new Array<number>(dims.length).fill(0);
  const count = prod(dims);
  let from = start;
  for (let k = 0; k < count; k++) {
    visit(k, from);
    for (let a = dims.length - 1; a >= 0; a--) {
      const i = (index[a] ?? 0) + 1;
      if (i < (dims[a] ?? 1)) {
        index[a] = i;
        from += strides[a] ?? 0;
        break;
      }
      index[a] = 0;
      from -= ((dims[a] ?? 1) - 1) * (strides[a] ?? 0);
    }
  }
}

/** The flat offset in `outer` (an index space) of the o-th index of `inner` (row-major). */
function offsetOf(o: number, inner: readonly number[], outer: readonly number[]): number {
  let rest = o;
  let offset = 0;
  let scale = 1;
  for (let a = inner.length - 1; a >= 0; a--) {
    const d = inner[a] ?? 1;
    offset += (rest % d) * scale;
    rest = Math.floor(rest / d);
    scale *= outer[a] ?? 1;
  }
  return offset;
}

/**
 * GatherV2 (batchDims 0) by block copies: tfjs-backend-wasm 4.22's own moves about 2 M elements
 * a second (gathering 64 of 256 images of 224 x 224 x 3 takes seconds). Indices outside
 * [0, size) throw, as on the cpu backend. Undefined for batchDims > 0 (the original kernel runs).
 */
export function gatherHost(
  backend: BackendLike,
  x: Info,
  indices: Info,
  attrs: tf.GatherV2Attrs,
): Info | undefined {
  const batchDims = (attrs as { batchDims?: number }).batchDims ?? 0; // absent in some calls
  if (batchDims !== 0 || x.dtype === 'string' || x.dtype === 'complex64') return undefined;
  const axis = attrs.axis < 0 ? attrs.axis + x.shape.length : attrs.axis;
  const size = x.shape[axis] ?? 1;
  const outer = prod(x.shape.slice(0, axis));
  const inner = prod(x.shape.slice(axis + 1));
  const count = prod(indices.shape);
  const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  // Checked before the output is allocated (a copy of the indices, which are small).
  const wanted = backend.readSync(indices.dataId) as Int32Array;
  const bad = wanted.find((i) => i < 0 || i >= size);
  if (bad !== undefined)
    throw new Error(`GatherV2: the index value ${bad} is not in [0, ${size - 1}]`);
  const io = hostCall(backend, [x, indices], shape, x.dtype, false);
  const [src, ids] = io.ins as [Values, Int32Array];
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < count; k++) {
      const from = (o * size + (ids[k] ?? 0)) * inner;
      io.out.set(src.subarray(from, from + inner), (o * count + k) * inner);
    }
  }
  return io.done();
}

/** UnsortedSegmentSum: rows of x with segment id j summed into row j; ids outside are dropped. */
export function unsortedSegmentSum(
  backend: BackendLike,
  x: Info,
  segmentIds: Info,
  numSegments: number,
): Info {
  const rowShape = x.shape.slice(segmentIds.shape.length);
  const row = prod(rowShape);
  const io = hostCall(backend, [segmentIds, x], [numSegments, ...rowShape], x.dtype, true);
  const [ids, values] = io.ins as [Int32Array, Float32Array | Int32Array];
  const out = io.out;
  ids.forEach((j, i) => {
    if (j < 0 || j >= numSegments) return;
    const from = i * row;
    const to = j * row;
    for (let k = 0; k < row; k++) out[to + k] = (out[to + k] ?? 0) + (values[from + k] ?? 0);
  });
  return io.done();
}
