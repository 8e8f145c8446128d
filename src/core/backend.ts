import * as tf from '@tensorflow/tfjs-core';
import { checkNumber, checkOneOf, describeValue } from './checks.js';
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
   * (passed to tfjs's `setWasmPaths`). Not needed in Node. In a bundled app that imports
   * `@tensorflow/tfjs-backend-wasm` itself, pass {@link SelectBackendOptions.wasmModule} too.
   */
  readonly wasmPaths?: string;
  /**
   * wasm (also as an `'auto'` candidate): the module namespace of `@tensorflow/tfjs-backend-wasm`
   * as the application imported it (`import * as wasm from '@tensorflow/tfjs-backend-wasm'`, or
   * `await import('@tensorflow/tfjs-backend-wasm')`). The library calls its `setWasmPaths` and
   * `setThreadsCount`, which live in the package's module state, not in tfjs-core. In Node it is
   * not needed (the library imports the same module itself). In a browser bundle the library
   * cannot import the package, so without it `wasmPaths` is refused and the thread count stays
   * tfjs's default (a note says so). Default: none.
   */
  readonly wasmModule?: {
    /** Where the backend fetches its `.wasm` files (a URL prefix). */
    setWasmPaths(prefix: string): void;
    /** The thread count the backend starts its pool with. */
    setThreadsCount(numThreads: number): void;
    /** The thread count of the running backend. */
    getThreadsCount(): number;
  };
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
   * Default `true`: installed on the tfjs-core versions they were checked on (4.22.0), skipped
   * with a note (`BackendInfo.notes`) and a warning on others. `'force'` installs them on any
   * version. `false` leaves the backend stock (fixes installed earlier stay).
   */
  readonly kernelFixes?: boolean | 'force';
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
 * import { runtimeEnvironment } from 'tfjs-contrastive';
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

// How Chromium, Firefox and Safari say that a bare specifier maps to nothing (and Vite's stub for a
// missing optional peer): the expected failure in a page, not worth repeating in the message.
const BARE_SPECIFIER_UNRESOLVED =
  /Failed to resolve module specifier|bare specifier|does not resolve to a valid URL|Could not resolve/i;

/**
 * Imports a backend package on demand. The specifier is computed and marked ignored, so that no
 * bundler (Rollup/Vite, esbuild, webpack) resolves or bundles it: an application bundles only the
 * backend packages it imports itself, and one that imports none of the others still builds.
 * In Node the import loads the installed package (the same module instance the application
 * would get); in a browser it succeeds only through an import map.
 */
async function importBackendPackage(name: BackendName, env: RuntimeEnvironment): Promise<unknown> {
  const specifier = PACKAGES[name];
  try {
    return await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
  } catch (cause) {
    const text = String((cause as { message?: unknown } | undefined)?.message ?? cause);
    if (env !== 'node') {
      throw new ContrastiveError(
        {
          caller: 'selectBackend',
          argument: 'name',
          expected: `a backend registered with tfjs-core (by importing ${specifier})`,
          received:
            `'${name}', which is not registered, and whose package cannot be loaded on demand ` +
            `in a ${env === 'worker' ? 'worker' : 'browser'}` +
            (BARE_SPECIFIER_UNRESOLVED.test(text) ? '' : ` (${text})`),
        },
        `Add import '${specifier}'; to your app before calling selectBackend ` +
          '(bundlers cannot load it on demand).',
      );
    }
    const missing = /Cannot find (module|package)|ERR_MODULE_NOT_FOUND|Failed to resolve/i.test(
      text,
    );
    throw new ContrastiveError(
      {
        caller: 'selectBackend',
        argument: 'name',
        expected: `a backend whose package can be loaded (${specifier})`,
        received: `'${name}', whose package ${missing ? 'is not installed' : `failed to load: ${text}`}`,
      },
      missing ? `Install it with: npm install ${specifier}@^4.22.0` : undefined,
    );
  }
}

// tf.findBackendFactory is typed non-null but answers null for an unknown name: read the
// registry of factories (what tf.setBackend looks up) directly.
function backendRegistered(name: BackendName): boolean {
  const factories: Record<string, unknown> = tf.engine().registryFactory;
  return factories[name] !== undefined;
}

function isWasmModule(value: unknown): value is WasmModule {
  const m = value as Partial<Record<keyof WasmModule, unknown>> | null | undefined;
  return (
    typeof m?.setWasmPaths === 'function' &&
    typeof m.setThreadsCount === 'function' &&
    typeof m.getThreadsCount === 'function'
  );
}

/**
 * Makes sure `name` is registered with tfjs-core and returns wasm's module handle when it can be
 * had. A backend the application imported itself is used as it is (the bundler put it in the
 * page); only an unregistered one is imported on demand.
 */
async function loadBackend(
  name: BackendName,
  env: RuntimeEnvironment,
  options: SelectBackendOptions,
): Promise<WasmModule | undefined> {
  const given: unknown = name === 'wasm' ? options.wasmModule : undefined;
  if (given !== undefined && !isWasmModule(given)) {
    throw new ContrastiveError({
      caller: 'selectBackend',
      argument: 'options.wasmModule',
      expected:
        "the module namespace of @tensorflow/tfjs-backend-wasm (await import('@tensorflow/tfjs-backend-wasm'))",
      received: describeValue(given),
    });
  }
  if (backendRegistered(name)) {
    if (name !== 'wasm' || given !== undefined) return given;
    // Node resolves the bare name to the module the application imported (one module cache). A
    // browser could at best reach another copy through an import map, whose setWasmPaths would
    // configure nothing that runs: there the application passes options.wasmModule.
    if (env !== 'node') return undefined;
    try {
      const loaded = await importBackendPackage(name, env);
      return isWasmModule(loaded) ? loaded : undefined;
    } catch {
      return undefined; // registered from a bundle: runs with tfjs's defaults, a note says so
    }
  }
  if (given !== undefined) {
    // Importing the package registers the backend: this module did so with another tfjs-core.
    throw new ContrastiveError({
      caller: 'selectBackend',
      argument: 'options.wasmModule',
      expected: 'the @tensorflow/tfjs-backend-wasm module registered with this tfjs-core',
      received:
        'a module whose backend is not registered here (two copies of @tensorflow/tfjs-core?)',
    });
  }
  const loaded = await importBackendPackage(name, env);
  if (!backendRegistered(name)) {
    throw new ContrastiveError({
      caller: 'selectBackend',
      argument: 'name',
      expected: 'a backend that can initialise in this environment',
      received:
        `'${name}', which failed to initialise in ${env}: its package loaded but registered no ` +
        'backend with tfjs-core (webgl and webgpu register only in browsers; or a second copy of ' +
        'tfjs-core is installed)',
    });
  }
  return name === 'wasm' && isWasmModule(loaded) ? loaded : undefined;
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

// Returns the thread count asked of tfjs, or undefined when the pool already exists or cannot be
// sized (no module handle).
async function prepareWasm(
  wasm: WasmModule | undefined,
  env: RuntimeEnvironment,
  options: SelectBackendOptions,
  notes: string[],
): Promise<number | undefined> {
  if (backendInitialised('wasm')) {
    if (options.threads !== undefined || options.simd !== undefined) {
      notes.push('the wasm backend was already initialised: its thread pool and SIMD choice stay');
    }
    return undefined;
  }
  if (wasm === undefined && options.wasmPaths !== undefined) {
    throw new ContrastiveError(
      {
        caller: 'selectBackend',
        argument: 'options.wasmPaths',
        expected:
          'given together with options.wasmModule when the app imports @tensorflow/tfjs-backend-wasm itself',
        received: `${describeValue(options.wasmPaths)} without options.wasmModule`,
      },
      "Pass { wasmModule: await import('@tensorflow/tfjs-backend-wasm'), wasmPaths }: the paths " +
        'live in that module, which the library cannot import from inside a bundle.',
    );
  }
  if (options.simd === false) tf.env().set('WASM_HAS_SIMD_SUPPORT', false);
  if (wasm === undefined) {
    // The application bundled the package and did not hand its module over.
    notes.push(
      "threads left at tfjs's default: pass options.wasmModule " +
        "(await import('@tensorflow/tfjs-backend-wasm')) to set them",
    );
    return undefined;
  }
  if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths);
  const threads = options.threads ?? Math.min(8, await logicalCores(env));
  if (threads > 1 && env === 'node') {
    const { enableNodeWasmThreads } = await import('./wasm-node-threads.js');
    const result = await enableNodeWasmThreads({ threads, wasm });
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

// The pool size the running wasm backend reports itself (the C++ side's get_threads_count, which
// the package's getThreadsCount returns too), for when there is no module handle.
function wasmBackendThreads(): number {
  const engine = tf.engine() as unknown as {
    registry?: Record<string, { wasm?: { tfjs?: { getThreadsCount?: () => number } } }>;
  };
  const n = engine.registry?.wasm?.wasm?.tfjs?.getThreadsCount?.();
  return typeof n === 'number' && n >= 1 ? n : 1;
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
  const wasm = await loadBackend(name, env, options);
  const requestedThreads =
    name === 'wasm' ? await prepareWasm(wasm, env, options, notes) : undefined;
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
    threads = wasm?.getThreadsCount() ?? wasmBackendThreads();
    if (requestedThreads !== undefined && requestedThreads !== threads) {
      notes.push(`asked for ${requestedThreads} threads, running ${threads}`);
    }
  }
  const gpu = name === 'webgl' || name === 'webgpu' ? describeGpu(name) : { software: false };
  const fixable = name === 'wasm' || name === 'cpu';
  let kernelFixes: readonly string[] = [];
  if (fixable && options.kernelFixes !== false) {
    const report = installKernelFixes(name, { force: options.kernelFixes === 'force' });
    kernelFixes = report.kernels;
    if (report.skipped !== undefined) notes.push(report.skipped);
  }
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
 * Configures and activates a tfjs backend, loading its package if needed, and reports what is
 * really running.
 *
 * The library never imports a backend package where a bundler can see it. A backend that is
 * already registered with tfjs-core (the application imported its package, as tfjs apps do:
 * `import '@tensorflow/tfjs-backend-webgl'`) is used as it is. Only an unregistered one is
 * imported on demand, through an import that bundlers (Vite/Rollup, esbuild, webpack) neither
 * resolve nor bundle: that works in Node, where the package is simply installed, and in a page
 * only through an import map. So in a bundled browser app, import the backends you want before
 * calling this; asking for another one throws an error that says so, and `'auto'` skips it with a
 * note. For wasm in a browser bundle, hand the package's module over as `options.wasmModule`, so
 * that `wasmPaths` and the thread count can be set (they live in that module, not in tfjs-core).
 *
 * For wasm it turns SIMD on and starts a thread pool (in Node too, where tfjs itself never does),
 * then reports the real SIMD state and thread count. `'auto'` tries the candidates in order and
 * keeps the first that initialises, skipping GPU backends that run on a software renderer or only
 * in half precision.
 *
 * @param name - `'cpu'`, `'wasm'`, `'webgl'`, `'webgpu'` or `'auto'`. Default `'auto'`.
 * For wasm and cpu it also registers the library's kernel fixes ({@link installKernelFixes}) unless
 * `options.kernelFixes` is `false`.
 *
 * @param options - threads, SIMD, wasm paths and module, kernel fixes, and the candidates of
 * `'auto'`; see {@link SelectBackendOptions}.
 * @returns a {@link BackendInfo}: the backend, SIMD, threads, float32 precision and notes.
 * @throws {@link ContrastiveError} when the name is unknown; when the backend is not registered
 *   and its package is not installed (Node: the message names the package to install) or cannot
 *   be loaded on demand (a browser bundle: the message says to import it in the app); when
 *   `wasmPaths` is given in a bundle without `wasmModule`; or when the backend fails to initialise.
 *
 * @example
 * Node: the package is loaded on demand.
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-layers'; // registers gradients, needed for training
 * import { selectBackend } from 'tfjs-contrastive';
 *
 * const info = await selectBackend('wasm', { threads: 2 });
 * console.log(info); // { name: 'wasm', simd: true, threads: 2, float32: true, ... }
 * ```
 *
 * @example
 * A bundled browser app (Vite, esbuild, webpack): import the backend yourself.
 * <!-- snippet typecheck-only="browser only: the webgl package registers its backend only in a page" -->
 * ```ts
 * import '@tensorflow/tfjs-backend-webgl';
 * import { selectBackend } from 'tfjs-contrastive';
 *
 * await selectBackend('webgl');
 * ```
 *
 * @example
 * A bundled browser app with wasm: pass the module, and where the `.wasm` files are served.
 * <!-- snippet typecheck-only="browser only: the .wasm files are fetched from the page's /wasm/" -->
 * ```ts
 * import * as wasm from '@tensorflow/tfjs-backend-wasm';
 * import { selectBackend } from 'tfjs-contrastive';
 *
 * await selectBackend('wasm', { wasmModule: wasm, wasmPaths: '/wasm/', threads: 4 });
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
  const fixes: unknown = options.kernelFixes;
  if (fixes !== undefined && fixes !== true && fixes !== false && fixes !== 'force') {
    throw new ContrastiveError({
      caller: 'selectBackend',
      argument: 'options.kernelFixes',
      expected: "true, false or 'force'",
      received: describeValue(fixes),
    });
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
