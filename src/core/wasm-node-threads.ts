/**
 * Multithreaded tfjs wasm backend in Node.
 *
 * tfjs-backend-wasm 4.x never uses threads in Node (tfjs issue #3830): its
 * `WASM_HAS_MULTITHREAD_SUPPORT` flag returns `false` whenever `IS_NODE`, and if that flag is
 * forced, emscripten starts its pthread workers with `new Worker(URL.createObjectURL(blob))`,
 * which Node's `worker_threads` rejects (ERR_WORKER_PATH: only file paths and file:/data: URLs).
 * The pthread worker then loads the main glue from a second Blob (`mainScriptUrlOrBlob`) through
 * `importScripts`, which in Node reads files only.
 *
 * {@link enableNodeWasmThreads} works around that without touching tfjs's files:
 *
 * 1. It writes the pthread worker script that tfjs ships
 *    (`wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`, the same text as the Blob) to a file in
 *    `os.tmpdir()`, followed by a few lines that make the worker's `importScripts` load the main
 *    glue from `wasm-out/tfjs-backend-wasm-threaded-simd.js` when it is handed a `blob:` URL.
 *    A throw-away worker started from that file checks it before anything is changed.
 * 2. It sets the `WASM_HAS_MULTITHREAD_SUPPORT` flag and the requested thread count.
 * 3. It wraps the wasm backend's factory in tfjs's registry. Only while that factory runs (the
 *    `tf.setBackend('wasm')` / `tf.ready()` that follows), two globals are patched, see
 *    `patchWhileInitialising`, and restored as soon as the backend is up or has failed.
 * 4. Once the backend is up it puts the original factory back, `unref()`s the pthread workers so
 *    that they never keep the process alive (emscripten `ref()`s a worker while its thread runs,
 *    and XNNPACK's threads run forever), and deletes the temporary file.
 *
 * If the threaded start fails after all, the factory turns the flag off again, warns once, and
 * starts the single-threaded SIMD binary instead, so `tf.setBackend('wasm')` still succeeds.
 *
 * It depends on these internals of tfjs-backend-wasm 4.22 (re-check them on upgrade):
 * - `wasm-out/tfjs-backend-wasm-threaded-simd.worker.js` exports `wasmWorkerContents`, the text
 *   that `init()` turns into the worker Blob (with `\n` escaped, type `application/javascript`);
 * - `wasm-out/tfjs-backend-wasm-threaded-simd.js` is the same emscripten glue as the one bundled
 *   in `dist/tf-backend-wasm.node.js` (a Node pthread evaluates it instead of the Blob);
 * - the glue counts cores with `require('os').cpus().length`, and the C++ side caps the pool at
 *   `min(requested, 8, cores / 2)`; the glue pre-starts 8 workers and exposes them as
 *   `Module.PThread.{runningWorkers,unusedWorkers}`, reachable as `backend.wasm.PThread`;
 * - `tf.engine().registryFactory.wasm.factory` is what `tf.setBackend('wasm')` calls.
 *
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';
import { nodeBuiltin } from './node-builtins.js';

type NodeOs = typeof import('node:os');
type NodeFs = typeof import('node:fs');
type NodePath = typeof import('node:path');
type NodeModule = typeof import('node:module');
type NodeWorkerThreads = typeof import('node:worker_threads');

interface NodeApis {
  readonly os: NodeOs;
  readonly fs: NodeFs;
  readonly path: NodePath;
  readonly module: NodeModule;
  readonly workerThreads: NodeWorkerThreads;
}

/** What {@link enableNodeWasmThreads} did. */
export interface NodeWasmThreadsResult {
  /** Whether the next wasm backend start will use the threaded SIMD binary. */
  readonly enabled: boolean;
  /** Why threads were not enabled, or (when enabled) a caveat such as tfjs's cap of 8 threads. */
  readonly reason?: string;
}

type BackendFactory = () => tf.KernelBackend | Promise<tf.KernelBackend>;

interface WasmPackage {
  setThreadsCount(numThreads: number): void;
  getThreadsCount(): number;
}

/** The parts of emscripten's pthread runtime that are touched here (not in tfjs's typings). */
interface PThreadRuntime {
  readonly runningWorkers?: readonly unknown[];
  readonly unusedWorkers?: readonly unknown[];
}

/** A temporary worker script, and how to delete it. */
interface WorkerScript {
  readonly file: string;
  /** The byte size of the Blob tfjs builds for the worker, to recognise it. */
  readonly blobSize: number;
  /** Writes the file again if it has gone (a tmp cleaner) since it was checked; throws if it cannot. */
  readonly ensure: () => void;
  readonly remove: () => void;
}

/** tfjs-backend-wasm's XNNPACK pool size limit (cc/backend.cc `max_num_threads`, 8 pre-started workers). */
const TFJS_MAX_THREADS = 8;
const WORKER_SOURCE = 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js';
const GLUE_SOURCE = 'wasm-out/tfjs-backend-wasm-threaded-simd.js';
const WORKER_BLOB_TYPE = 'application/javascript';
const PREFLIGHT_MARK = 'tfjs-contrastive:wasm-pthread-preflight';
const PREFLIGHT_TIMEOUT_MS = 15_000;

/** Factories installed here, with the thread count they were set up for (a second call updates it). */
const installed = new WeakMap<BackendFactory, { threads: number }>();

/**
 * Makes the next start of tfjs's wasm backend in Node use the threaded SIMD binary with `threads`
 * XNNPACK threads. Call it before `tf.setBackend('wasm')` / `tf.ready()`, with the module of
 * `@tensorflow/tfjs-backend-wasm` that registered the backend (selectBackend has it); it calls that
 * module's `setThreadsCount`. (It imports no package itself, so bundlers see no import here.)
 *
 * Nothing global is changed unless it returns `enabled: true`; the globals patched during the
 * backend's start are listed on `patchWhileInitialising`. The process still exits on its own.
 *
 * @param options - `threads`: XNNPACK threads, at least 2; tfjs runs at most 8. `wasm`: the
 *   package's module namespace.
 * @returns `{ enabled: true }`, or `{ enabled: false, reason }` saying exactly why not.
 *
 * @example
 * <!-- snippet skip="internal, not exported: selectBackend('wasm') calls it in Node" -->
 * ```ts
 * const wasm = await import('@tensorflow/tfjs-backend-wasm');
 * const { enabled, reason } = await enableNodeWasmThreads({ threads: 2, wasm });
 * await tf.setBackend('wasm'); // getThreadsCount() === 2 when enabled
 * ```
 *
 * @internal
 */
export async function enableNodeWasmThreads(options: {
  threads: number;
  wasm: WasmPackage;
}): Promise<NodeWasmThreadsResult> {
  const requested: unknown = (options as { threads?: unknown } | undefined)?.threads;
  if (typeof requested !== 'number' || !Number.isInteger(requested) || requested < 1) {
    return off(`options.threads must be a positive integer, got ${String(requested)}`);
  }
  const versions = (globalThis as { process?: { versions?: { node?: unknown } } }).process
    ?.versions;
  if (typeof versions?.node !== 'string') {
    return off('not running in Node (process.versions.node is missing); nothing to do here');
  }
  if (requested === 1) {
    return off('1 thread requested: the single-threaded SIMD binary is the faster choice');
  }
  const memoryProblem = sharedWasmMemoryProblem();
  if (memoryProblem !== undefined) return off(memoryProblem);

  const { wasm } = options;
  let node: NodeApis;
  try {
    node = await loadNodeApis();
  } catch (e) {
    return off(`could not load the Node built-ins: ${message(e)}`);
  }

  const threads = Math.min(requested, TFJS_MAX_THREADS);
  const capNote =
    requested > TFJS_MAX_THREADS
      ? `tfjs-backend-wasm runs at most ${TFJS_MAX_THREADS} threads; ${TFJS_MAX_THREADS} will run`
      : undefined;
  const engine = tf.engine();
  if (engine.registry['wasm'] !== undefined) {
    // Typically a second test file in a process whose tfjs is shared (vitest vm pools, no isolation).
    const running = runningThreads(wasm);
    return running === threads
      ? on(`the wasm backend was already running with ${running} threads`)
      : off(
          `the wasm backend is already initialised (with ${running ?? 'an unknown number of'} ` +
            'threads); its thread pool cannot change any more',
        );
  }
  const entry = engine.registryFactory['wasm'];
  if (entry === undefined) {
    return off('no wasm backend is registered with tfjs-core (two copies of tfjs-core installed?)');
  }
  const existing = installed.get(entry.factory);
  if (existing !== undefined) {
    existing.threads = threads;
    wasm.setThreadsCount(threads);
    return on(capNote);
  }
  if ((await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) !== true) {
    return off('WASM_HAS_SIMD_SUPPORT is false, and tfjs only ships its threaded binary with SIMD');
  }

  let script: WorkerScript | undefined;
  try {
    const packageDir = locateWasmPackage(node, wasm);
    script = await writeWorkerScript(node, packageDir);
    const problem = await preflight(node.workerThreads, script.file);
    if (problem !== undefined) {
      script.remove();
      return off(`a test pthread worker did not start: ${problem}`);
    }
  } catch (e) {
    script?.remove();
    return off(message(e));
  }

  const state = { threads };
  const original = entry.factory;
  const wrapped = threadedFactory(node, original, script, state, () => {
    // Hand the registry back its own factory once it has run (see threadedFactory).
    if (entry.factory === wrapped) entry.factory = original;
  });
  installed.set(wrapped, state);
  try {
    entry.factory = wrapped;
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
  } catch (e) {
    entry.factory = original;
    script.remove();
    return off(`could not configure tfjs: ${message(e)}`);
  }
  return on(capNote);
}

function off(reason: string): NodeWasmThreadsResult {
  return { enabled: false, reason };
}

function on(note: string | undefined): NodeWasmThreadsResult {
  return note === undefined ? { enabled: true } : { enabled: true, reason: note };
}

function runningThreads(wasm: WasmPackage): number | undefined {
  try {
    return wasm.getThreadsCount();
  } catch {
    return undefined;
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Why wasm threads cannot work here (no shared wasm memory), or `undefined` when they can. */
function sharedWasmMemoryProblem(): string | undefined {
  if (typeof SharedArrayBuffer !== 'function') return 'SharedArrayBuffer is not available';
  try {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return memory.buffer instanceof SharedArrayBuffer
      ? undefined
      : 'WebAssembly shared memory is not backed by a SharedArrayBuffer';
  } catch (e) {
    return `WebAssembly shared memory is not supported: ${message(e)}`;
  }
}

async function loadNodeApis(): Promise<NodeApis> {
  const [os, fs, path, module, workerThreads] = await Promise.all([
    nodeBuiltin<NodeOs>('os'),
    nodeBuiltin<NodeFs>('fs'),
    nodeBuiltin<NodePath>('path'),
    nodeBuiltin<NodeModule>('module'),
    nodeBuiltin<NodeWorkerThreads>('worker_threads'),
  ]);
  return { os, fs, path, module, workerThreads };
}

/**
 * The directory of the tfjs-backend-wasm package that is actually loaded: the entry of Node's
 * module cache whose exports are the ones imported (import() of this CommonJS package fills that
 * cache too), else the package that resolves from the working directory.
 */
function locateWasmPackage(node: NodeApis, wasm: WasmPackage): string {
  const { fs, path } = node;
  const require = node.module.createRequire(path.join(process.cwd(), 'noop.js'));
  const candidates: string[] = [];
  for (const [file, cached] of Object.entries(require.cache)) {
    const exported = cached?.exports as Partial<WasmPackage> | undefined;
    if (exported?.setThreadsCount === wasm.setThreadsCount) {
      candidates.push(path.dirname(path.dirname(file)));
    }
  }
  if (candidates.length === 0) {
    try {
      candidates.push(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')));
    } catch {
      // Reported below.
    }
  }
  for (const dir of candidates) {
    if (
      fs.existsSync(path.join(dir, WORKER_SOURCE)) &&
      fs.existsSync(path.join(dir, GLUE_SOURCE))
    ) {
      return dir;
    }
  }
  throw new Error(
    `could not find ${WORKER_SOURCE} and ${GLUE_SOURCE} of @tensorflow/tfjs-backend-wasm ` +
      `(looked in: ${candidates.join(', ') || 'nothing found in the module cache or from the cwd'})`,
  );
}

/**
 * Writes tfjs's pthread worker script to a temporary `.cjs` file (CommonJS whatever the nearest
 * package.json says; the script uses `require` and `__filename`), followed by our own lines:
 * - the worker's `importScripts` (defined by tfjs's script) gets the glue's Blob URL from the main
 *   thread; Node can only read files, so a `blob:` URL is mapped to the package's copy of the glue;
 * - a worker started with `workerData === PREFLIGHT_MARK` loads the glue and reports back.
 * The file is removed once the backend is up, or at process exit at the latest.
 */
async function writeWorkerScript(node: NodeApis, packageDir: string): Promise<WorkerScript> {
  const { fs, os, path } = node;
  const require = node.module.createRequire(path.join(packageDir, 'package.json'));
  const contents = (
    require(path.join(packageDir, WORKER_SOURCE)) as { wasmWorkerContents?: unknown }
  ).wasmWorkerContents;
  if (typeof contents !== 'string' || !contents.includes('importScripts')) {
    throw new Error(`${WORKER_SOURCE} no longer exports the pthread worker script`);
  }
  // tfjs escapes the newlines (they sit inside one string literal) before making the Blob.
  const escaped = contents.replace(/\n/g, '\\n');
  const gluePath = path.join(packageDir, GLUE_SOURCE);
  const source = [
    '// tfjs-backend-wasm pthread worker, written by tfjs-contrastive for Node (tfjs issue #3830).',
    escaped,
    ';(function () {',
    `  var gluePath = ${JSON.stringify(gluePath)};`,
    '  var threads = require("worker_threads");',
    '  var load = globalThis.importScripts;',
    '  globalThis.importScripts = function (url) {',
    '    return load(String(url).indexOf("blob:") === 0 ? gluePath : url);',
    '  };',
    `  if (threads.workerData === ${JSON.stringify(PREFLIGHT_MARK)}) {`,
    '    threads.parentPort.postMessage({ glue: typeof require(gluePath) });',
    '  }',
    '})();',
    '',
  ].join('\n');

  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'tfjs-contrastive-wasm-'));
  const file = path.join(dir, 'pthread-worker.cjs');
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    process.off('exit', remove);
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // A temporary file left behind is not worth failing for.
    }
  };
  // Safety net for a backend that is never started: remove the file when the process exits.
  process.once('exit', remove);
  try {
    await fs.promises.writeFile(file, source, 'utf8');
  } catch (e) {
    remove();
    throw e;
  }
  const ensure = (): void => {
    if (removed) throw new Error('the pthread worker script has already been removed');
    if (!fs.existsSync(file)) {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(file, source, 'utf8');
    }
  };
  return { file, blobSize: new TextEncoder().encode(escaped).byteLength, ensure, remove };
}

/** Starts one worker from the script and waits for it to load the glue; the problem, if any. */
function preflight(workerThreads: NodeWorkerThreads, file: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let worker: InstanceType<NodeWorkerThreads['Worker']>;
    try {
      worker = new workerThreads.Worker(file, { workerData: PREFLIGHT_MARK });
    } catch (e) {
      resolve(message(e));
      return;
    }
    let done = false;
    const finish = (problem: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      worker.removeAllListeners();
      worker.on('error', () => undefined);
      void worker.terminate();
      resolve(problem);
    };
    const timer = setTimeout(() => {
      finish(`no answer within ${PREFLIGHT_TIMEOUT_MS} ms`);
    }, PREFLIGHT_TIMEOUT_MS);
    worker.unref();
    worker.once('message', (reply: { glue?: unknown } | undefined) => {
      finish(reply?.glue === 'function' ? undefined : `the glue loaded as ${String(reply?.glue)}`);
    });
    worker.once('error', (e: unknown) => finish(message(e)));
    worker.once('exit', (code: number) => finish(`it exited with code ${code}`));
  });
}

/**
 * Patches, for the duration of one wasm backend start, the two globals that tfjs's threaded start
 * reads in Node, and returns the function that restores them (idempotent):
 *
 * - `URL.createObjectURL`: tfjs turns the pthread worker script into a Blob URL, which Node's
 *   `Worker` cannot load. For that Blob only (type `application/javascript` and the exact size of
 *   the script), the path of the temporary copy is returned instead; anything else goes to the
 *   original.
 * - `os.cpus` (the `node:os` exports object that tfjs's glue `require`s): the glue reports
 *   `os.cpus().length` as the logical core count, and tfjs's C++ side halves it and caps the pool
 *   at that, so 2 threads on 2 cores would silently become 1. While patched it returns the real
 *   entries padded (with copies) to 2 × threads. Only done when the machine has fewer than that.
 */
function patchWhileInitialising(os: NodeOs, script: WorkerScript, threads: number): () => void {
  const restorers: Array<() => void> = [];

  const urlDescriptor = Object.getOwnPropertyDescriptor(URL, 'createObjectURL');
  const createObjectURL = URL.createObjectURL.bind(URL);
  const materialising = (obj: Blob): string =>
    obj instanceof Blob && obj.type === WORKER_BLOB_TYPE && obj.size === script.blobSize
      ? script.file
      : createObjectURL(obj);
  Object.defineProperty(URL, 'createObjectURL', {
    configurable: true,
    enumerable: urlDescriptor?.enumerable ?? true,
    writable: true,
    value: materialising,
  });
  restorers.push(() => {
    if (URL.createObjectURL !== materialising) return; // someone else has replaced it since
    if (urlDescriptor === undefined) Reflect.deleteProperty(URL, 'createObjectURL');
    else Object.defineProperty(URL, 'createObjectURL', urlDescriptor);
  });

  const realCpus = os.cpus;
  const wanted = 2 * threads;
  if (realCpus.call(os).length < wanted) {
    const paddedCpus: NodeOs['cpus'] = () => {
      const cpus = realCpus.call(os);
      const first = cpus[0];
      if (first === undefined) return cpus;
      return [...cpus, ...Array.from({ length: wanted - cpus.length }, () => ({ ...first }))];
    };
    os.cpus = paddedCpus;
    restorers.push(() => {
      if (os.cpus === paddedCpus) os.cpus = realCpus;
    });
  }

  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    for (const restore of restorers.reverse()) restore();
  };
}

/** The wasm backend's factory, wrapped to start the threaded binary (see the file's comment). */
function threadedFactory(
  node: NodeApis,
  original: BackendFactory,
  script: WorkerScript,
  state: { threads: number },
  unwrap: () => void,
): BackendFactory {
  return async () => {
    let restore = (): void => undefined;
    let backend: tf.KernelBackend;
    try {
      // A worker that cannot load its script is fatal (emscripten rethrows its 'error' event).
      script.ensure();
      restore = patchWhileInitialising(node.os, script, state.threads);
      backend = await original();
    } catch (e) {
      restore();
      script.remove();
      unwrap();
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      console.warn(
        `tfjs-contrastive: the threaded wasm backend failed to start in Node (${message(e)}); ` +
          'starting the single-threaded SIMD binary instead.',
      );
      return await original();
    } finally {
      restore();
    }
    unwrap();
    script.remove(); // every pthread worker has read it: the glue waits for all 8 to load
    const pthreads = (backend as unknown as { wasm?: { PThread?: PThreadRuntime } }).wasm?.PThread;
    for (const worker of [
      ...(pthreads?.runningWorkers ?? []),
      ...(pthreads?.unusedWorkers ?? []),
    ]) {
      // XNNPACK's threads never end, and emscripten ref()s a worker while its thread runs: unref
      // them so that they do not keep the process alive (Node stops them at exit).
      (worker as { unref?: () => void }).unref?.();
    }
    return backend;
  };
}
