/**
 * @internal The library's own WebAssembly SIMD kernels (simd.wat), run in place on the wasm
 * backend's heap. tfjs-backend-wasm 4.22 runs its elementwise and reduction kernels on one thread
 * without SIMD, and composing them costs a full pass over memory per operation; these kernels do
 * one fused pass each:
 *
 * - column sums over the leading axes (Sum and Mean: batch norm's statistics, bias gradients),
 *   float32 sums of 64 rows folded into float64 totals;
 * - batch norm's centred squares, its normalisation, its two backward sums in one pass, and its
 *   input gradient;
 * - the gradient of 2x2 max pooling with stride 2.
 *
 * The module imports the backend's WebAssembly.Memory (a shared one under tfjs's threaded build,
 * which the shared variant declares), so nothing is copied. Where the memory cannot be found or
 * the engine lacks SIMD, {@link simdKernels} returns undefined and callers keep their other path.
 */
import { SIMD_PLAIN, SIMD_SHARED } from './simd-binary.js';
import { type HeapBackend, heapOf } from './host.js';
import { type BackendLike, type Info, prod } from './scratch.js';

/** The exports of simd.wat; pointers are byte offsets into the backend's heap. */
interface SimdExports {
  columnSum(x: number, m: number, c: number, acc: number, out: number, scale: number): void;
  columnCentredSquares(
    x: number,
    mean: number,
    m: number,
    c: number,
    acc: number,
    out: number,
    scale: number,
  ): void;
  batchNormGradSums(
    dy: number,
    x: number,
    mean: number,
    m: number,
    c: number,
    acc: number,
    out: number,
  ): void;
  centredAffine(
    x: number,
    mean: number,
    scale: number,
    shift: number,
    m: number,
    c: number,
    y: number,
  ): void;
  batchNormInputGrad(
    dy: number,
    x: number,
    mean: number,
    s: number,
    b: number,
    o: number,
    m: number,
    c: number,
    dx: number,
  ): void;
  maxPool2x2Grad(
    x: number,
    dy: number,
    n: number,
    h: number,
    w: number,
    c: number,
    dx: number,
  ): void;
  im2colT(
    xt: number,
    ci: number,
    n: number,
    h: number,
    w: number,
    kh: number,
    kw: number,
    top: number,
    left: number,
    oh: number,
    ow: number,
    m0: number,
    count: number,
    out: number,
  ): void;
}

/** The wasm backend's heap access, and its emscripten module (where its memory is). */
interface WasmBackend extends HeapBackend {
  wasm?: { wasmMemory?: unknown; asm?: Record<string, unknown> };
}

/** The instantiated kernels of each heap (null: this heap cannot have them). */
const instances = new WeakMap<WebAssembly.Memory, SimdExports | null>();

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(text.length));
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** The heap of a tfjs-backend-wasm backend: exported by the threaded build, else by its module. */
function memoryOf(backend: WasmBackend): WebAssembly.Memory | undefined {
  const wasm = backend.wasm;
  if (wasm === undefined) return undefined;
  if (wasm.wasmMemory instanceof WebAssembly.Memory) return wasm.wasmMemory;
  for (const value of Object.values(wasm.asm ?? {})) {
    if (value instanceof WebAssembly.Memory) return value;
  }
  return undefined;
}

/** A SIMD kernel set bound to `backend`'s heap, and the backend's heap access. */
export interface BoundSimd {
  readonly kernels: SimdExports;
  readonly backend: WasmBackend;
}

/**
 * The SIMD kernels for `backend` (a tfjs-backend-wasm instance), instantiated once per heap;
 * undefined for other backends, or where the engine has no WebAssembly SIMD.
 */
export function simdKernels(backend: BackendLike): BoundSimd | undefined {
  const b: WasmBackend | undefined = heapOf(backend);
  if (b === undefined) return undefined;
  const memory = memoryOf(b);
  if (memory === undefined) return undefined;
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    kernels = null;
    const shared =
      typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const bytes = decode(shared ? SIMD_SHARED : SIMD_PLAIN);
    if (WebAssembly.validate(bytes)) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
        env: { memory },
      });
      kernels = instance.exports as unknown as SimdExports;
    }
    instances.set(memory, kernels);
  }
  return kernels === null ? undefined : { kernels, backend: b };
}

/** The byte offset of a tensor's data in the wasm heap. */
function at(simd: BoundSimd, t: Info): number {
  return simd.backend.typedArrayFromHeap(t).byteOffset;
}

/**
 * Runs `body` with the scratch of a column reduction of `quantities` sums over `c` columns (float64
 * totals and float32 block sums, 12 bytes a column each), freed afterwards.
 */
function withScratch(
  simd: BoundSimd,
  quantities: number,
  c: number,
  body: (acc: number) => void,
): void {
  const scratch = simd.backend.makeOutput([3 * quantities * c], 'float32');
  try {
    body(at(simd, scratch));
  } finally {
    simd.backend.disposeData(scratch.dataId);
  }
}

/** Whether a float32 matrix with `c` columns suits the kernels (4 columns per vector). */
export function simdColumns(c: number): boolean {
  return c >= 4 && c % 4 === 0;
}

/**
 * Sum (or mean, `scale` 1 / rows) of x viewed as [lead, rows, inner] over its middle axis:
 * [lead, inner], in float32 blocks of 64 rows folded into float64 totals. `inner` must suit {@link simdColumns}.
 */
export function columnSums(
  simd: BoundSimd,
  x: Info,
  lead: number,
  rows: number,
  inner: number,
  scale: number,
  shape: number[],
): Info {
  const out = simd.backend.makeOutput(shape, 'float32');
  const base = at(simd, x);
  const target = at(simd, out);
  withScratch(simd, 1, inner, (acc) => {
    for (let l = 0; l < lead; l++) {
      simd.kernels.columnSum(
        base + 4 * l * rows * inner,
        rows,
        inner,
        acc,
        target + 4 * l * inner,
        scale,
      );
    }
  });
  return out;
}

/** The mean of (x - mean)^2 over the rows of x [m, c]: the biased variance about `mean` [c]. */
export function centredSquares(simd: BoundSimd, x: Info, mean: Info): Info {
  const c = x.shape[x.shape.length - 1] ?? 1;
  const m = prod(x.shape) / c;
  const out = simd.backend.makeOutput([c], 'float32');
  withScratch(simd, 1, c, (acc) =>
    simd.kernels.columnCentredSquares(at(simd, x), at(simd, mean), m, c, acc, at(simd, out), 1 / m),
  );
  return out;
}

/** (x - mean) scale + shift for x [m, c] and the rest [c]. */
export function centredAffine(
  simd: BoundSimd,
  x: Info,
  mean: Info,
  scale: Info,
  shift: Info,
): Info {
  const c = x.shape[x.shape.length - 1] ?? 1;
  const out = simd.backend.makeOutput([...x.shape], 'float32');
  simd.kernels.centredAffine(
    at(simd, x),
    at(simd, mean),
    at(simd, scale),
    at(simd, shift),
    prod(x.shape) / c,
    c,
    at(simd, out),
  );
  return out;
}

/** [2, c]: the column sums of dy and of dy (x - mean), for x and dy [m, c]. */
export function batchNormGradSums(simd: BoundSimd, dy: Info, x: Info, mean: Info): Info {
  const c = x.shape[x.shape.length - 1] ?? 1;
  const out = simd.backend.makeOutput([2, c], 'float32');
  withScratch(simd, 2, c, (acc) =>
    simd.kernels.batchNormGradSums(
      at(simd, dy),
      at(simd, x),
      at(simd, mean),
      prod(x.shape) / c,
      c,
      acc,
      at(simd, out),
    ),
  );
  return out;
}

/** dy s + (x - mean) b + o for dy and x [m, c] and the rest [c]. */
export function batchNormInputGrad(
  simd: BoundSimd,
  inputs: { dy: Info; x: Info; mean: Info; s: Info; b: Info; o: Info },
): Info {
  const { dy, x } = inputs;
  const c = x.shape[x.shape.length - 1] ?? 1;
  const out = simd.backend.makeOutput([...x.shape], 'float32');
  simd.kernels.batchNormInputGrad(
    at(simd, dy),
    at(simd, x),
    at(simd, inputs.mean),
    at(simd, inputs.s),
    at(simd, inputs.b),
    at(simd, inputs.o),
    prod(x.shape) / c,
    c,
    at(simd, out),
  );
  return out;
}

/** The gradient of 2x2 max pooling with stride 2 over x [n, h, w, c], h and w even. */
export function maxPool2x2Grad(simd: BoundSimd, x: Info, dy: Info): Info {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const out = simd.backend.makeOutput([...x.shape], 'float32');
  simd.kernels.maxPool2x2Grad(at(simd, x), at(simd, dy), n, h, w, c, at(simd, out));
  return out;
}

/** The window geometry of a stride-1 convolution, for {@link im2colT}. */
export interface Im2colGeometry {
  readonly kh: number;
  readonly kw: number;
  readonly top: number;
  readonly left: number;
  readonly oh: number;
  readonly ow: number;
}

/**
 * The transposed columns of a stride-1 convolution over images `first` .. `first + count - 1` of
 * xt [ci, n, h, w]: [kh kw ci, count oh ow], row (a kw + b) ci + c holding channel c of every
 * output position's input at window offset (a, b), zero outside the image.
 */
export function im2colT(
  simd: BoundSimd,
  xt: Info,
  g: Im2colGeometry,
  first: number,
  count: number,
): Info {
  const [ci, n, h, w] = xt.shape as [number, number, number, number];
  const out = simd.backend.makeOutput([g.kh * g.kw * ci, count * g.oh * g.ow], 'float32');
  simd.kernels.im2colT(
    at(simd, xt),
    ci,
    n,
    h,
    w,
    g.kh,
    g.kw,
    g.top,
    g.left,
    g.oh,
    g.ow,
    first,
    count,
    at(simd, out),
  );
  return out;
}
