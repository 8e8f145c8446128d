/**
 * Kernel fixes: overrides of tfjs kernels that are missing, wrong or pathologically slow on the
 * wasm and cpu backends of tfjs 4.22, registered with `tf.registerKernel` and built only from
 * kernels that are fast on the same backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import { describeValue } from '../checks.js';
import {
  conv2dFilterGradient,
  conv2dInputGradient,
  depthwiseFilterGradient,
  depthwiseInputGradient,
} from './conv.js';
import { viaCpu } from './fallback.js';
import {
  gatherHost,
  maxPoolGradHost,
  sliceHost,
  tileHost,
  transposeHost,
  unsortedSegmentSum,
} from './host.js';
import { accurateReduce, plainMatMul, reducedShape } from './matmul-reduce.js';
import { BATCH_NORM_KERNELS } from './batch-norm.js';
import { TILE_GRADIENT } from './gradients.js';
import {
  batchNormGradSums,
  batchNormInputGrad,
  centredAffine,
  centredSquares,
  columnSums,
  maxPool2x2Grad,
  simdColumns,
  simdKernels,
} from './simd.js';
import {
  type BackendLike,
  type Info,
  type Originals,
  Scratch,
  lookupKernel,
  need,
  prod,
} from './scratch.js';

/** The backends that have kernel fixes. */
export type KernelFixBackend = 'wasm' | 'cpu';

/**
 * The tfjs-core versions the kernel fixes were checked on (against the stock cpu kernels, by
 * tests/core/kernel-fixes.test.ts). On any other version they are not installed unless forced: a
 * later tfjs may have fixed the kernels itself, or changed what they compute.
 */
export const KERNEL_FIXES_CHECKED_ON: readonly string[] = ['4.22.0'];

/** Options of {@link installKernelFixes}. */
export interface KernelFixOptions {
  /**
   * Install on a tfjs-core version the fixes were not checked on (see
   * {@link KERNEL_FIXES_CHECKED_ON}). Default `false`: such a version gets a warning and no fixes.
   */
  readonly force?: boolean;
  /** Where the warning for an unchecked version goes. Default `console.warn`. */
  readonly onWarning?: (message: string) => void;
  /** The tfjs-core version to check. Default `tf.version_core`. @internal */
  readonly version?: string;
}

/** What {@link installKernelFixes} did. */
export interface KernelFixReport {
  /** The backend the kernels were registered for. */
  readonly backend: KernelFixBackend;
  /** The kernel names now served by the library, sorted (none when skipped). */
  readonly kernels: readonly string[];
  /** Why nothing was installed, when nothing was (a tfjs-core version the fixes were not checked on). */
  readonly skipped?: string;
}

// What an override computes, given a scratch (intermediates freed on return). Returning
// undefined hands the call to the original kernel (configurations an override does not cover).
type Body = (s: Scratch, inputs: tf.NamedTensorInfoMap, attrs: object) => Info | undefined;

interface Override {
  readonly kernel: string;
  readonly body?: Body;
  /** For kernels whose inputs are read on the host instead. */
  readonly direct?: tf.KernelFunc;
}

/**
 * An override computed from two named inputs; kernel attributes arrive untyped and are read as
 * tfjs declares them for the kernel.
 */
function twoInputs(
  kernel: string,
  [first, second]: readonly [string, string],
  // Each compute function declares the attribute type tfjs gives its kernel.
  compute: (s: Scratch, a: Info, b: Info, attrs: never) => Info | undefined,
): Override {
  return {
    kernel,
    body: (s, i, attrs) => compute(s, need(i, first), need(i, second), attrs as never),
  };
}

const convFilter = twoInputs('Conv2DBackpropFilter', ['x', 'dy'], conv2dFilterGradient);
const convInput = twoInputs('Conv2DBackpropInput', ['dy', 'filter'], conv2dInputGradient);
const depthwiseInput = twoInputs(
  'DepthwiseConv2dNativeBackpropInput',
  ['dy', 'filter'],
  depthwiseInputGradient,
);
const depthwiseFilter = twoInputs(
  'DepthwiseConv2dNativeBackpropFilter',
  ['x', 'dy'],
  depthwiseFilterGradient,
);
const maxPoolGrad: Override = {
  kernel: 'MaxPoolGrad',
  direct: ({ inputs, backend, attrs }) => {
    const dy = need(inputs, 'dy');
    const input = need(inputs, 'input');
    const poolAttrs = attrs as unknown as tf.MaxPoolGradAttrs;
    const simd = simdKernels(backend as BackendLike);
    if (simd !== undefined && tiles2x2(input, dy, poolAttrs))
      return maxPool2x2Grad(simd, input, dy);
    return maxPoolGradHost(backend as BackendLike, dy, input, poolAttrs);
  },
};

/**
 * Whether a max pooling is 2x2 windows with stride 2 that tile its float32 input exactly (even
 * height and width, no padding: 'valid', or 'same' on even sizes) over channels that suit the SIMD
 * kernel.
 */
function tiles2x2(input: Info, dy: Info, attrs: tf.MaxPoolGradAttrs): boolean {
  if (input.dtype !== 'float32' || dy.dtype !== 'float32' || input.shape.length !== 4) {
    return false;
  }
  const [, h, w, c] = input.shape as [number, number, number, number];
  // The same geometry maxPoolGradHost computes: 2x2 windows, stride 2, no padding, tiling x.
  const g = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { top, bottom, left, right } = g.padInfo;
  return (
    g.filterHeight === 2 &&
    g.filterWidth === 2 &&
    g.strideHeight === 2 &&
    g.strideWidth === 2 &&
    top + bottom + left + right === 0 &&
    2 * g.outHeight === h &&
    2 * g.outWidth === w &&
    simdColumns(c)
  );
}
const transpose: Override = {
  kernel: 'Transpose',
  body: (s, i, attrs) =>
    transposeHost(s.backend, need(i, 'x'), (attrs as unknown as tf.TransposeAttrs).perm),
};
const slice: Override = {
  kernel: 'Slice',
  body: (s, i, attrs) => {
    const x = need(i, 'x');
    const { begin, size } = attrs as unknown as tf.SliceAttrs;
    // The kernel's attributes as the op passed them: a number or an array; size -1 = to the end.
    const b = x.shape.map((_, a) =>
      typeof begin === 'number' ? (a === 0 ? begin : 0) : (begin[a] ?? 0),
    );
    const z = x.shape.map((d, a) => {
      const given = typeof size === 'number' ? (a === 0 ? size : -1) : (size[a] ?? -1);
      return given === -1 ? d - (b[a] ?? 0) : given;
    });
    if (z.some((d) => d === 0)) return undefined;
    return sliceHost(s.backend, x, b, z);
  },
};
const gather: Override = {
  kernel: 'GatherV2',
  body: (s, i, attrs) =>
    gatherHost(s.backend, need(i, 'x'), need(i, 'indices'), attrs as unknown as tf.GatherV2Attrs),
};
const tile: Override = {
  kernel: 'Tile',
  body: (s, i, attrs) => tileHost(s.backend, need(i, 'x'), (attrs as unknown as tf.TileAttrs).reps),
};
const matMul = (kernel: 'BatchMatMul' | '_FusedMatMul'): Override => ({
  kernel,
  body: (s, inputs, attrs) => {
    const flags = attrs as unknown as tf.BatchMatMulAttrs;
    return flags.transposeA || flags.transposeB
      ? plainMatMul(s, kernel, inputs, flags as tf.BatchMatMulAttrs & Record<string, unknown>)
      : undefined;
  },
});
const reduce = (kernel: 'Sum' | 'Mean'): Override => ({
  kernel,
  body: (s, i, attrs) => {
    const x = need(i, 'x');
    const sumAttrs = attrs as unknown as tf.SumAttrs;
    const simd = simdKernels(s.backend);
    const columns = columnReduction(x, sumAttrs);
    if (simd !== undefined && columns !== undefined) {
      const { lead, rows, inner, shape } = columns;
      return s.own(columnSums(simd, x, lead, rows, inner, kernel === 'Mean' ? 1 / rows : 1, shape));
    }
    return accurateReduce(s, x, sumAttrs, kernel === 'Mean');
  },
});

/**
 * A float32 reduction over consecutive axes followed by a SIMD-sized block of kept elements, as
 * [lead, rows, inner] summed over rows, with the output shape; undefined otherwise.
 */
function columnReduction(
  x: Info,
  attrs: tf.SumAttrs,
): { lead: number; rows: number; inner: number; shape: number[] } | undefined {
  if (x.dtype !== 'float32' || x.shape.length === 0) return undefined;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape).sort((a, b) => a - b);
  const first = axes[0];
  const last = axes[axes.length - 1];
  if (first === undefined || last === undefined) return undefined;
  if (last - first + 1 !== axes.length) return undefined;
  const inner = prod(x.shape.slice(last + 1));
  const rows = prod(axes.map((a) => x.shape[a] ?? 1));
  if (!simdColumns(inner) || rows === 0) return undefined;
  const shape = reducedShape(x.shape, axes, attrs.keepDims);
  return { lead: prod(x.shape.slice(0, first)), rows, inner, shape };
}

/** A library kernel of batch norm on SIMD (see ./batch-norm.ts), computed in place on the heap. */
function simdOnly(
  kernel: string,
  compute: (
    simd: NonNullable<ReturnType<typeof simdKernels>>,
    inputs: tf.NamedTensorInfoMap,
  ) => Info,
): Override {
  return {
    kernel,
    direct: ({ inputs, backend }) => {
      const simd = simdKernels(backend as BackendLike);
      if (simd === undefined) {
        throw new Error(`tfjs-contrastive: ${kernel} needs WebAssembly SIMD on the wasm backend`);
      }
      return compute(simd, inputs);
    },
  };
}

const batchNormKernels: readonly Override[] = [
  simdOnly(BATCH_NORM_KERNELS.centredSquares, (simd, i) =>
    centredSquares(simd, need(i, 'x'), need(i, 'mean')),
  ),
  simdOnly(BATCH_NORM_KERNELS.centredAffine, (simd, i) =>
    centredAffine(simd, need(i, 'x'), need(i, 'mean'), need(i, 'scale'), need(i, 'shift')),
  ),
  simdOnly(BATCH_NORM_KERNELS.gradSums, (simd, i) =>
    batchNormGradSums(simd, need(i, 'dy'), need(i, 'x'), need(i, 'mean')),
  ),
  simdOnly(BATCH_NORM_KERNELS.inputGrad, (simd, i) =>
    batchNormInputGrad(simd, {
      dy: need(i, 'dy'),
      x: need(i, 'x'),
      mean: need(i, 'mean'),
      s: need(i, 's'),
      b: need(i, 'b'),
      o: need(i, 'o'),
    }),
  ),
];
/**
 * Identity (tf.clone, and every tensor an op saves for its gradient) shares the input's buffer, as
 * Reshape does on wasm and Identity does on cpu, instead of copying it: a conv-net step saves about
 * two hundred tensors, a few dozen of them full-size activations.
 */
const identity: Override = {
  kernel: 'Identity',
  body: (_s, i) => {
    const x = need(i, 'x');
    // A new TensorInfo (the input may be the Tensor itself, which the engine would hand back).
    return x.dtype === 'string'
      ? undefined
      : { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  },
};

const segmentSum: Override = {
  kernel: 'UnsortedSegmentSum',
  direct: ({ inputs, backend, attrs }) =>
    unsortedSegmentSum(
      backend as BackendLike,
      need(inputs, 'x'),
      need(inputs, 'segmentIds'),
      (attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments,
    ),
};

const FIXES: Record<KernelFixBackend, readonly Override[]> = {
  wasm: [
    convFilter,
    convInput,
    depthwiseInput,
    depthwiseFilter,
    maxPoolGrad,
    tile,
    transpose,
    slice,
    gather,
    matMul('BatchMatMul'),
    matMul('_FusedMatMul'),
    reduce('Sum'),
    reduce('Mean'),
    segmentSum,
    { kernel: 'Einsum', direct: viaCpu('Einsum') },
    identity,
    ...batchNormKernels,
  ],
  // The cpu backend's own filter gradient takes about 40x longer than this one.
  cpu: [convFilter],
};

interface Installed {
  /** The replaced configurations (absent for kernels the backend lacked). */
  readonly originals: Map<string, tf.KernelConfig>;
}

// Shared by every copy of the library loaded in one realm (an ESM and a CJS build, say): the
// kernel registry is global, so the record of what replaced it must be too.
const REGISTRY_KEY = Symbol.for('tfjs-contrastive.kernelFixes');
function installed(): Map<string, Installed> {
  const holder = globalThis as unknown as Record<symbol, Map<string, Installed> | undefined>;
  return (holder[REGISTRY_KEY] ??= new Map<string, Installed>());
}

// tfjs-core's own gradient of Tile while the library's replaces it (with any backend's fixes).
const TILE_GRADIENT_KEY = Symbol.for('tfjs-contrastive.kernelFixes.tileGradient');
interface GradientHolder {
  [TILE_GRADIENT_KEY]?: tf.GradConfig;
}

/** Registers the library's gradients while any backend has its fixes, and restores tfjs's after. */
function syncGradients(): void {
  const holder = globalThis as unknown as GradientHolder;
  if (installed().size > 0 && holder[TILE_GRADIENT_KEY] === undefined) {
    holder[TILE_GRADIENT_KEY] = tf.getGradient('Tile');
    tf.registerGradient(TILE_GRADIENT);
  } else if (installed().size === 0 && holder[TILE_GRADIENT_KEY] !== undefined) {
    tf.registerGradient(holder[TILE_GRADIENT_KEY]);
    holder[TILE_GRADIENT_KEY] = undefined;
  }
}

const WARNED_KEY = Symbol.for('tfjs-contrastive.kernelFixes.warned');
function warnedVersions(): Set<string> {
  const holder = globalThis as unknown as Record<symbol, Set<string> | undefined>;
  return (holder[WARNED_KEY] ??= new Set<string>());
}

function overrideConfig(
  backendName: string,
  fix: Override,
  original: tf.KernelConfig | undefined,
  originals: Originals,
): tf.KernelConfig {
  const body: Body = fix.body ?? (() => undefined);
  const kernelFunc: tf.KernelFunc =
    fix.direct ??
    (({ inputs, backend, attrs }) => {
      const s = new Scratch(backend as BackendLike, backendName, originals);
      const given = Object.values(inputs).filter((t): t is Info => t !== undefined);
      try {
        const result = body(s, inputs, attrs ?? {});
        if (result !== undefined) return s.finish(result, given);
      } catch (e) {
        s.dispose();
        throw e;
      }
      s.dispose();
      if (original === undefined) {
        throw new Error(
          `tfjs-contrastive: ${fix.kernel} on ${backendName} with these attributes is not covered ` +
            `by the kernel fixes and the backend has no kernel of its own`,
        );
      }
      return original.kernelFunc({ inputs, backend, attrs });
    });
  // The wasm backend binds its native functions in each kernel's setupFunc when it initialises;
  // a replacement registered before that must carry the original's setup along.
  return {
    kernelName: fix.kernel,
    backendName,
    kernelFunc,
    ...(original?.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
    ...(original?.disposeFunc === undefined ? {} : { disposeFunc: original.disposeFunc }),
  };
}

function checkFixBackend(caller: string, backend: unknown): KernelFixBackend {
  if (backend === 'wasm' || backend === 'cpu') return backend;
  throw new ContrastiveError({
    caller,
    argument: 'backend',
    expected: "'wasm' or 'cpu' (the backends with kernel fixes)",
    received: describeValue(backend),
  });
}

/**
 * Registers the library's kernel fixes for the wasm or cpu backend of tfjs 4.22. Idempotent.
 * {@link selectBackend} calls it for you; call it yourself when you activate the backend with
 * `tf.setBackend`. It may run before or after the backend initialises.
 *
 * On wasm (all built from kernels that are fast there: forward convolutions, transpose, pad,
 * slice, reverse, plain matrix products):
 * - `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropInput`, `DepthwiseConv2dNativeBackpropFilter`:
 *   missing, so no convolutional layer can train on stock wasm;
 * - `Conv2DBackpropInput`: about 10x slower than the forward convolution;
 * - `MaxPoolGrad`: wrong values whenever batch or channels exceed 1 (2x2 windows with stride 2:
 *   one SIMD pass of the library's own, src/core/kernels/simd.wat);
 * - `BatchMatMul` and `_FusedMatMul` with transpose flags: about 10x slower than without (every
 *   dense layer's backward pass), and wrong values for the fused one; done as an explicit transpose
 *   then a plain product;
 * - `Sum` and `Mean` over 1024 or more elements: a single float32 running sum loses about 1% at
 *   1e6 elements; done in two levels, or over consecutive axes followed by a multiple of 4 kept
 *   elements, in one SIMD pass with float64 accumulators;
 * - `Identity` (`tf.clone` and every tensor an op saves for its gradient): copies its input; the
 *   replacement shares the buffer, as `Reshape` does;
 * - new kernels for the library's `BatchNorm` in training (variance, normalisation, the backward
 *   sums and the input gradient, one SIMD pass each);
 * - `Tile` and `GatherV2` (batch dims 0): generic and very slow (gathering images moves about 2 M
 *   elements a second), done as block copies on the host; `Transpose` of rank 5 or more and `Slice`
 *   (about 40 M elements a second) likewise;
 * - the gradient of `Tile` (on every backend while any backend has the fixes): tfjs-core's adds one
 *   slice per repetition, tens of thousands of kernels for tfjs-layers' `layerNormalization` in a
 *   ViT step; the replacement sums each tiled axis in one reduction;
 * - `UnsortedSegmentSum` (gather's gradient): missing, computed on the host; `Einsum`: missing, run
 *   by the cpu backend on copies (needs `@tensorflow/tfjs-backend-cpu` imported).
 *
 * On cpu: `Conv2DBackpropFilter`, whose own implementation is about 40x slower than this one.
 *
 * Results match the cpu backend's stock kernels to float32 rounding (tests/core/kernel-fixes.test.ts).
 * The fixes are installed only on the tfjs-core versions they were checked on
 * ({@link KERNEL_FIXES_CHECKED_ON}, today 4.22.0): on another version the call warns once, installs
 * nothing and says so in `skipped`, unless `force` is set. To opt out altogether, do not call it
 * (with {@link selectBackend}: `kernelFixes: false`).
 *
 * @param backend - `'wasm'` or `'cpu'`.
 * @param options - `force` (false), `onWarning` (console.warn).
 * @returns the backend and the kernel names it now takes from the library (or why none).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { installKernelFixes } from 'tfjs-contrastive';
 *
 * await tf.setBackend('wasm');
 * installKernelFixes('wasm'); // conv layers can now train on wasm
 * ```
 */
export function installKernelFixes(
  backend: KernelFixBackend,
  options: KernelFixOptions = {},
): KernelFixReport {
  const name = checkFixBackend('installKernelFixes', backend);
  const registry = installed();
  const fixes = FIXES[name];
  const version = options.version ?? tf.version_core;
  if (!registry.has(name) && !KERNEL_FIXES_CHECKED_ON.includes(version) && options.force !== true) {
    const skipped =
      `tfjs-contrastive: the ${name} kernel fixes were checked on tfjs-core ` +
      `${KERNEL_FIXES_CHECKED_ON.join(', ')}, and this is ${version}: not installed (pass ` +
      `force: true to installKernelFixes, or kernelFixes: 'force' to selectBackend, to install ` +
      `them anyway; without them convolutions may not train on wasm if this tfjs still lacks ` +
      `their gradients)`;
    const warned = warnedVersions();
    if (!warned.has(`${name} ${version}`)) {
      warned.add(`${name} ${version}`);
      (options.onWarning ?? console.warn)(skipped);
    }
    return { backend: name, kernels: [], skipped };
  }
  if (!registry.has(name)) {
    const originals = new Map<string, tf.KernelConfig>();
    for (const fix of fixes) {
      const original = lookupKernel(fix.kernel, name);
      if (original !== undefined) originals.set(fix.kernel, original);
    }
    for (const fix of fixes) {
      const original = originals.get(fix.kernel);
      if (original !== undefined) tf.unregisterKernel(fix.kernel, name);
      tf.registerKernel(overrideConfig(name, fix, original, originals));
    }
    registry.set(name, { originals });
    syncGradients();
  }
  return { backend: name, kernels: fixes.map((f) => f.kernel).sort() };
}

/**
 * Restores the kernels {@link installKernelFixes} replaced on `backend` (and unregisters the ones
 * the backend lacked). For comparisons with stock tfjs; nothing in the library needs it.
 *
 * @param backend - `'wasm'` or `'cpu'`.
 *
 * @example
 * ```ts
 * import { installKernelFixes, removeKernelFixes } from 'tfjs-contrastive';
 * removeKernelFixes('wasm'); // stock tfjs-backend-wasm, e.g. to compare
 * installKernelFixes('wasm'); // and back
 * ```
 */
export function removeKernelFixes(backend: KernelFixBackend): void {
  const name = checkFixBackend('removeKernelFixes', backend);
  const entry = installed().get(name);
  if (entry === undefined) return;
  for (const fix of FIXES[name]) {
    tf.unregisterKernel(fix.kernel, name);
    const original = entry.originals.get(fix.kernel);
    if (original !== undefined) tf.registerKernel(original);
  }
  installed().delete(name);
  syncGradients();
}
