import * as tf from '@tensorflow/tfjs-core';
import { checkBoolean, checkNumber, checkOneOf, describeValue } from './checks.js';
import { ContrastiveError } from './errors.js';
import { installKernelFixes } from './kernels/install.js';
import { nodeBuiltin } from './node-builtins.js';

/** A tfjs backend the library can select. */
export type BackendName = 'cpu' | 'wasm' | 'webgl' | 'webgpu';

/** The argument of {@link selectBackend}: a backend, or `'auto'` for the fastest that works. */
export type BackendChoice = BackendName | 'auto';

/** Where the code is running. */
export type RuntimeEnvironment = 'node' | 'browser' | 'worker' | 'other';

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /**
   * wasm only: the number of threads for XNNPACK. Default: the number of logical cores, at most 8
   * (in Node via `os.availableParallelism()`, in browsers `navigator.hardwareConcurrency`).
   * Threads need SharedArrayBuffer: in a browser the page must be cross-origin isolated
   * (COOP/COEP headers). In Node the library starts tfjs's pthread workers itself (tfjs turns
   * them off in Node, tfjs issue #3830). When threads cannot be had, the backend still comes up
   * single-threaded and {@link BackendInfo.notes} says why. Ignored once the wasm backend has
   * been initialised in this process (it cannot change its thread pool).
   */
  readonly threads?: number;
  /** wasm only: use the SIMD binary where supported. Default `true`. */
  readonly simd?: boolean;
  /**
   * wasm only, browsers: where the `.wasm` binaries are served from, a URL prefix ending in `/`
   * (passed to tfjs's `setWasmPaths`). Not needed in Node.
   */
  readonly wasmPaths?: string;
  /**
   * `'auto'` only: the backends to try, in order of preference. Default: `['wasm', 'cpu']` in
   * Node; `['webgpu', 'webgl', 'wasm', 'cpu']` in browsers.
   */
  readonly candidates?: readonly BackendName[];
  /**
   * `'auto'` only: accept a GPU backend that runs on a software renderer (SwiftShader, llvmpipe),
   * which is far slower than wasm. Default `false`.
   */
  readonly allowSoftwareGpu?: boolean;
  /**
   * wasm and cpu: register the library's fixes for tfjs 4.22's missing, wrong and slow kernels
   * (see {@link installKernelFixes}; without them no convolutional layer can train on wasm).
   * Default `true`. `false` leaves the backend stock (fixes installed earlier stay).
   */
  readonly kernelFixes?: boolean;
}

/** What {@link selectBackend} set up: the truth about the running backend. */
export interface BackendInfo {
  /** The active backend. */
  readonly name: BackendName;
  /** Where the code is running. */
  readonly environment: RuntimeEnvironment;
  /** wasm: whether the SIMD binary runs. Always `false` for other backends. */
  readonly simd: boolean;
  /** wasm: the number of XNNPACK threads actually running. 1 for cpu; 1 for GPU backends. */
  readonly threads: number;
  /** Whether the backend computes in full float32 (`false` for half-float WebGL textures). */
  readonly float32: boolean;
  /** GPU backends: the renderer or adapter, when the browser tells it. */
  readonly device?: string;
  /** GPU backends: whether the device is a software renderer. */
  readonly softwareRenderer: boolean;
  /** wasm and cpu: the kernels the library's fixes now serve ({@link installKernelFixes}). */
  readonly kernelFixes: readonly string[];
  /** Why something asked for was not enabled (threads, SIMD, a skipped candidate). */
  readonly notes: readonly string[];
}

const PACKAGES: Record<BackendName, string> = {
  cpu: '@tensorflow/tfjs-backend-cpu',
  wasm: '@tensorflow/tfjs-backend-wasm',
  webgl: '@tensorflow/tfjs-backend-webgl',
  webgpu: '@tensorflow/tfjs-backend-webgpu',
};

const BACKEND_NAMES: readonly BackendName[] = ['cpu', 'wasm', 'webgl', 'webgpu'];

interface WasmModule {
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
  setWasmPaths(prefix: string): void;
}

/**
 * Where the code is running.
 *
 * @returns `'node'`, `'browser'` (a window), `'worker'` (a web worker) or `'other'`.
 *
 * @example
 * ```ts
 * if (runtimeEnvironment() === 'node') console.log('no WebGL here');
 * ```
 */
export function runtimeEnvironment(): RuntimeEnvironment {
  const g = globalThis as { process?: { versions?: { node?: string } }; window?: unknown };
  if (typeof g.process?.versions?.node === 'string') return 'node';
  if (typeof g.window === 'object') return 'browser';
  if (typeof (globalThis as { importScripts?: unknown }).importScripts === 'function') {
    return 'worker';
  }
  return 'other';
}

// Literal specifiers, so that bundlers can see (and split out) each backend package; nothing here
// runs unless selectBackend asks for that backend.
async function importBackendPackage(name: BackendName): Promise<unknown> {
  try {
    switch (name) {
      case 'cpu':
        return await import('@tensorflow/tfjs-backend-cpu');
      case 'wasm':
        return await import('@tensorflow/tfjs-backend-wasm');
      case 'webgl':
        return await import('@tensorflow/tfjs-backend-webgl');
      case 'webgpu':
        return await import('@tensorflow/tfjs-backend-webgpu');
    }
  } catch (cause) {
    const text = String((cause as { message?: unknown } | undefined)?.message ?? cause);
    const missing = /Cannot find (module|package)|ERR_MODULE_NOT_FOUND|Failed to resolve/i.test(
      text,
    );
    throw new ContrastiveError(
      {
        caller: 'selectBackend',
        argument: 'name',
        expected: `a backend whose package can be loaded (${PACKAGES[name]})`,
        received: `'${name}', whose package ${missing ? 'is not installed' : `failed to load: ${text}`}`,
      },
      missing ? `Install it with: npm install ${PACKAGES[name]}@^4.22.0` : undefined,
    );
  }
}

async function logicalCores(env: RuntimeEnvironment): Promise<number> {
  if (env === 'node') {
    const os = await nodeBuiltin<typeof import('node:os')>('os');
    return typeof os.availableParallelism === 'function'
      ? os.availableParallelism()
      : os.cpus().length;
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

// tf.findBackend would initialise a registered backend as a side effect, so the engine's
// registry of initialised backends is read instead (tfjs-core 4.x: Engine.registry).
function backendInitialised(name: BackendName): boolean {
  const engine = tf.engine() as unknown as { registry?: Record<string, unknown> };
  return engine.registry?.[name] !== undefined;
}

// Returns the thread count asked of tfjs, or undefined when the pool already exists.
async function prepareWasm(
  wasm: WasmModule,
  env: RuntimeEnvironment,
  options: SelectBackendOptions,
  notes: string[],
): Promise<number | undefined> {
  if (options.simd === false) tf.env().set('WASM_HAS_SIMD_SUPPORT', false);
  if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths);
  if (backendInitialised('wasm')) {
    if (options.threads !== undefined || options.simd !== undefined) {
      notes.push('the wasm backend was already initialised: its thread pool and SIMD choice stay');
    }
    return undefined;
  }
  const threads = options.threads ?? Math.min(8, await logicalCores(env));
  if (threads > 1 && env === 'node') {
    const { enableNodeWasmThreads } = await import('./wasm-node-threads.js');
    const result = await enableNodeWasmThreads({ threads });
    if (!result.enabled) notes.push(`threads unavailable in Node: ${result.reason ?? 'unknown'}`);
  } else if (threads > 1 && (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) !== true) {
    notes.push(
      'threads unavailable: SharedArrayBuffer needs a cross-origin isolated page ' +
        '(Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp)',
    );
  }
  wasm.setThreadsCount(threads);
  return threads;
}

/**
 * Runs `init` while `navigator.hardwareConcurrency` reports at least `2 * threads` cores. tfjs's
 * wasm backend caps its pool at half the reported cores (2 cores: 1 thread) when it initialises;
 * an explicit or default thread count should not be silently halved. The shadowing own property
 * is removed afterwards, which restores the browser's getter. (Node is handled in
 * wasm-node-threads.ts.)
 */
async function withReportedCores<T>(threads: number, init: () => Promise<T>): Promise<T> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const reported = nav?.hardwareConcurrency ?? 0;
  if (nav === undefined || reported >= 2 * threads) return init();
  let patched = false;
  try {
    Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * threads, configurable: true });
    patched = true;
  } catch {
    // A browser that forbids it: tfjs's halving stays, and the report tells the real count.
  }
  try {
    return await init();
  } finally {
    if (patched) delete nav.hardwareConcurrency;
  }
}

interface GpuDescription {
  device?: string;
  software: boolean;
}

const SOFTWARE_RENDERER = /swiftshader|llvmpipe|software|basic render/i;

function describeGpu(name: BackendName): GpuDescription {
  try {
    if (name === 'webgl') {
      const backend = tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext } };
      const gl = backend.gpgpu?.gl;
      if (gl === undefined) return { software: false };
      const ext = gl.getExtension('WEBGL_debug_renderer_info');
      const device = String(
        ext === null ? gl.getParameter(gl.RENDERER) : gl.getParameter(ext.UNMASKED_RENDERER_WEBGL),
      );
      return { device, software: SOFTWARE_RENDERER.test(device) };
    }
    if (name === 'webgpu') {
      const backend = tf.backend() as unknown as {
        adapterInfo?: { vendor?: string; architecture?: string; isFallbackAdapter?: boolean };
      };
      const info = backend.adapterInfo;
      if (info === undefined) return { software: false };
      const device = [info.vendor, info.architecture].filter((s) => s).join(' ');
      return {
        device,
        software: info.isFallbackAdapter === true || SOFTWARE_RENDERER.test(device),
      };
    }
  } catch {
    // A browser that hides the renderer: report nothing rather than guess.
  }
  return { software: false };
}

/**
 * Whether the active backend stores and computes float32: (1 + 2^-20) - 1 survives only with more
 * than 20 mantissa bits (half floats have 10). Measured, because tfjs's own floatPrecision() answers
 * 16 on WebGL exactly when float32 rendering is enabled (tfjs-backend-webgl 4.22).
 */
async function measuresFloat32(): Promise<boolean> {
  const probe = tf.tidy(() => tf.sub(tf.add(tf.scalar(1), tf.scalar(2 ** -20)), tf.scalar(1)));
  const [value] = await probe.data();
  probe.dispose();
  return value === 2 ** -20;
}

async function activate(
  name: BackendName,
  env: RuntimeEnvironment,
  options: SelectBackendOptions,
  notes: string[],
): Promise<BackendInfo> {
  const pkg = await importBackendPackage(name);
  const requestedThreads =
    name === 'wasm' ? await prepareWasm(pkg as WasmModule, env, options, notes) : undefined;
  const init = async (): Promise<boolean> => {
    const set = await tf.setBackend(name);
    await tf.ready();
    return set;
  };
  let ok = false;
  let failure = '';
  try {
    ok =
      requestedThreads !== undefined && requestedThreads > 1 && env !== 'node'
        ? await withReportedCores(requestedThreads, init)
        : await init();
  } catch (e) {
    failure = `: ${String((e as { message?: unknown }).message ?? e)}`;
  }
  // tf.setBackend resolves false on failure while tf.getBackend() may still name the backend.
  if (!ok || tf.getBackend() !== name) {
    throw new ContrastiveError({
      caller: 'selectBackend',
      argument: 'name',
      expected: 'a backend that can initialise in this environment',
      received: `'${name}', which failed to initialise in ${env}${failure}`,
    });
  }
  let simd = false;
  let threads = 1;
  if (name === 'wasm') {
    simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
    threads = (pkg as WasmModule).getThreadsCount();
    if (requestedThreads !== undefined && requestedThreads !== threads) {
      notes.push(`asked for ${requestedThreads} threads, running ${threads}`);
    }
  }
  const gpu = name === 'webgl' || name === 'webgpu' ? describeGpu(name) : { software: false };
  const fixable = name === 'wasm' || name === 'cpu';
  const kernelFixes =
    fixable && options.kernelFixes !== false ? installKernelFixes(name).kernels : [];
  return {
    name,
    environment: env,
    simd,
    threads,
    float32: name === 'cpu' || name === 'wasm' ? true : await measuresFloat32(),
    ...(gpu.device === undefined ? {} : { device: gpu.device }),
    softwareRenderer: gpu.software,
    kernelFixes,
    notes,
  };
}

/**
 * Loads, configures and activates a tfjs backend at run time, and reports what is really running.
 *
 * The backend's package is imported only when asked for (a dynamic import), so an application
 * ships only the backends it uses, and the library itself never imports one. For wasm it turns
 * SIMD on and starts a thread pool (in Node too, where tfjs itself never does), then reports the
 * real SIMD state and thread count. `'auto'` tries the candidates in order and keeps the first that
 * initialises, skipping GPU backends that run on a software renderer or only in half precision.
 *
 * @param name - `'cpu'`, `'wasm'`, `'webgl'`, `'webgpu'` or `'auto'`. Default `'auto'`.
 * For wasm and cpu it also registers the library's kernel fixes ({@link installKernelFixes}) unless
 * `options.kernelFixes` is `false`.
 *
 * @param options - threads, SIMD, wasm paths, kernel fixes, and the candidates of `'auto'`.
 * @returns a {@link BackendInfo}: the backend, SIMD, threads, float32 precision and notes.
 * @throws {@link ContrastiveError} when the name is unknown, when the backend's package is not
 *   installed (the message names the package to install), or when it fails to initialise here.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-layers'; // registers gradients, needed for training
 * import { selectBackend } from 'tfjs-contrastive';
 *
 * const info = await selectBackend('wasm', { threads: 2 });
 * console.log(info); // { name: 'wasm', simd: true, threads: 2, float32: true, ... }
 * ```
 */
export async function selectBackend(
  name: BackendChoice = 'auto',
  options: SelectBackendOptions = {},
): Promise<BackendInfo> {
  checkOneOf('selectBackend', 'name', name, ['auto', ...BACKEND_NAMES]);
  if (options.threads !== undefined) {
    checkNumber('selectBackend', 'options.threads', options.threads, {
      integer: true,
      min: 1,
      max: 64,
    });
  }
  if (options.kernelFixes !== undefined) {
    checkBoolean('selectBackend', 'options.kernelFixes', options.kernelFixes);
  }
  const env = runtimeEnvironment();
  if (name !== 'auto') return activate(name, env, options, []);

  const candidates: readonly BackendName[] =
    options.candidates ?? (env === 'node' ? ['wasm', 'cpu'] : ['webgpu', 'webgl', 'wasm', 'cpu']);
  const untyped: unknown = candidates; // user input, checked at run time
  if (!Array.isArray(untyped) || untyped.length === 0) {
    throw new ContrastiveError({
      caller: 'selectBackend',
      argument: 'options.candidates',
      expected: `a non-empty array of ${BACKEND_NAMES.map((b) => `'${b}'`).join(', ')}`,
      received: describeValue(candidates),
    });
  }
  candidates.forEach((c, i) => {
    checkOneOf('selectBackend', `options.candidates[${i}]`, c, BACKEND_NAMES);
  });
  const skipped: string[] = [];
  for (const candidate of candidates) {
    try {
      const info = await activate(candidate, env, options, []);
      const isGpu = candidate === 'webgl' || candidate === 'webgpu';
      if (isGpu && info.softwareRenderer && options.allowSoftwareGpu !== true) {
        skipped.push(`${candidate}: software renderer ${info.device ?? ''}`.trim());
        continue;
      }
      if (isGpu && !info.float32) {
        skipped.push(`${candidate}: no float32 precision`);
        continue;
      }
      return { ...info, notes: [...skipped.map((s) => `skipped ${s}`), ...info.notes] };
    } catch (e) {
      skipped.push(`${candidate}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new ContrastiveError({
    caller: 'selectBackend',
    argument: 'options.candidates',
    expected: 'at least one backend that initialises here',
    received: `[${candidates.join(', ')}], all of which failed (${skipped.join('; ')})`,
  });
}
