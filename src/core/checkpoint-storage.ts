/**
 * Where checkpoint bytes live: a file in Node, or the browser's IndexedDB. A preset's
 * `save(target)` / `load(source)` encode their state as safetensors and hand the bytes here.
 */
import { describeValue } from './checks.js';
import { ContrastiveError } from './errors.js';
import { nodeBuiltin } from './node-builtins.js';

/** The scheme of a target stored in IndexedDB, as tfjs spells its own (`indexeddb://`). */
const INDEXEDDB_SCHEME = 'indexeddb://';
/** The scheme tfjs-node gives file paths; accepted and stripped. */
const FILE_SCHEME = 'file://';

/**
 * The IndexedDB database the library keeps checkpoints in, apart from tfjs's own
 * (`tensorflowjs`), so neither touches the other's stores.
 *
 * @example
 * ```ts
 * import { CHECKPOINT_DATABASE, CHECKPOINT_STORE } from 'tfjs-contrastive';
 * // DevTools > Application > IndexedDB > 'tfjs-contrastive' > 'checkpoints'
 * console.log(CHECKPOINT_DATABASE, CHECKPOINT_STORE);
 * ```
 */
export const CHECKPOINT_DATABASE = 'tfjs-contrastive';
/**
 * The object store of {@link CHECKPOINT_DATABASE}: one record per key, the file's bytes as a
 * `Uint8Array`.
 *
 * @example
 * ```ts
 * import { CHECKPOINT_STORE } from 'tfjs-contrastive';
 * const store = CHECKPOINT_STORE; // 'checkpoints'
 * ```
 */
export const CHECKPOINT_STORE = 'checkpoints';

interface Fs {
  promises: {
    mkdir(path: string, options: { recursive: boolean }): Promise<unknown>;
    writeFile(path: string, data: Uint8Array): Promise<void>;
    readFile(path: string): Promise<Uint8Array>;
    rename(from: string, to: string): Promise<void>;
    rm(path: string, options: { force: boolean }): Promise<void>;
  };
}
interface Path {
  dirname(path: string): string;
}

type Location = { kind: 'indexeddb'; key: string } | { kind: 'file'; path: string };

function locate(caller: string, argument: string, where: unknown): Location {
  const fail = (expected: string, hint?: string): never => {
    throw new ContrastiveError(
      { caller, argument, expected, received: describeValue(where) },
      hint,
    );
  };
  const forms = "'indexeddb://<key>' or a file path (Node)";
  if (typeof where !== 'string' || where.length === 0) return fail(forms);
  if (where.startsWith(INDEXEDDB_SCHEME)) {
    const key = where.slice(INDEXEDDB_SCHEME.length);
    if (key.length === 0) return fail("'indexeddb://<key>' with a non-empty key");
    return { kind: 'indexeddb', key };
  }
  const path = where.startsWith(FILE_SCHEME) ? where.slice(FILE_SCHEME.length) : where;
  // 'localstorage://x' or 'http://x' as a path would quietly create a folder named 'http:'.
  if (/^[A-Za-z][A-Za-z0-9+.-]+:\/\//.test(path) || path.length === 0) return fail(forms);
  if (!isNode()) {
    return fail(forms, 'File paths need Node; in a browser, use an indexeddb:// key.');
  }
  return { kind: 'file', path };
}

function isNode(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  return typeof proc?.versions?.node === 'string';
}

function indexedDb(caller: string, argument: string, where: string): IDBFactory {
  const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (idb === undefined) {
    throw new ContrastiveError(
      {
        caller,
        argument,
        expected: 'an indexeddb:// key where IndexedDB exists (a browser)',
        received: `${describeValue(where)}, but this environment has no IndexedDB`,
      },
      'In Node, give a file path instead.',
    );
  }
  return idb;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

async function openDatabase(idb: IDBFactory): Promise<IDBDatabase> {
  const req = idb.open(CHECKPOINT_DATABASE, 1);
  req.onupgradeneeded = () => {
    if (!req.result.objectStoreNames.contains(CHECKPOINT_STORE)) {
      req.result.createObjectStore(CHECKPOINT_STORE);
    }
  };
  return request(req);
}

/** Runs `body` in one transaction on the store and resolves when the transaction completes. */
async function withStore<T>(
  idb: IDBFactory,
  mode: IDBTransactionMode,
  body: (store: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  const db = await openDatabase(idb);
  try {
    const tx = db.transaction(CHECKPOINT_STORE, mode);
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    });
    // Both settle; awaiting them together leaves neither rejection unhandled.
    const [result] = await Promise.all([request(body(tx.objectStore(CHECKPOINT_STORE))), done]);
    return result;
  } finally {
    db.close();
  }
}

function errorCode(e: unknown): unknown {
  return typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
}

/**
 * Stores a checkpoint's bytes (a safetensors file, say) under a target: `indexeddb://<key>` puts
 * them in the browser's IndexedDB (database {@link CHECKPOINT_DATABASE}, store
 * {@link CHECKPOINT_STORE}, replacing an earlier record of that key); any other string is a file
 * path in Node (`file://` in front is dropped, as tfjs-node does), whose parent folders are
 * created. A file is written under a temporary name and renamed, so an interrupted save never
 * leaves a half-written checkpoint in place of a good one. The bytes are copied; the caller may
 * reuse its buffer once the promise resolves.
 *
 * @param target - `'indexeddb://<key>'`, or a file path (Node only).
 * @param bytes - what to store.
 * @returns a promise that resolves once the bytes are stored.
 * @throws {@link ContrastiveError} (the promise rejects) for an empty or non-string target, a
 *   URL scheme other than `indexeddb://` and `file://`, a file path outside Node, an
 *   `indexeddb://` target where there is no IndexedDB, or `bytes` not a `Uint8Array`. File-system
 *   and IndexedDB failures (permissions, quota) reject with their own errors.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { encodeSafetensors, writeCheckpointBytes } from 'tfjs-contrastive';
 *
 * const keys = tf.randomNormal([8, 4]);
 * const bytes = await encodeSafetensors({ 'queue.keys': keys }, { step: '2000' });
 * await writeCheckpointBytes('./checkpoints/moco/step-2000.safetensors', bytes); // Node
 * // in a browser: await writeCheckpointBytes('indexeddb://moco-step-2000', bytes);
 * keys.dispose();
 * ```
 */
export async function writeCheckpointBytes(target: string, bytes: Uint8Array): Promise<void> {
  const caller = 'writeCheckpointBytes';
  const where = locate(caller, 'target', target);
  if (!(bytes instanceof Uint8Array)) {
    throw new ContrastiveError({
      caller,
      argument: 'bytes',
      expected: 'a Uint8Array',
      received: describeValue(bytes),
    });
  }
  if (where.kind === 'indexeddb') {
    const idb = indexedDb(caller, 'target', target);
    // A structured clone of a view copies its whole buffer: store exactly the bytes.
    const record = new Uint8Array(bytes);
    await withStore(idb, 'readwrite', (store) => store.put(record, where.key));
    return;
  }
  const fs = await nodeBuiltin<Fs>('fs');
  const path = await nodeBuiltin<Path>('path');
  await fs.promises.mkdir(path.dirname(where.path), { recursive: true });
  const partial = `${where.path}.partial-${Math.random().toString(36).slice(2)}`;
  try {
    await fs.promises.writeFile(partial, bytes);
    await fs.promises.rename(partial, where.path);
  } catch (e) {
    await fs.promises.rm(partial, { force: true });
    throw e;
  }
}

/**
 * Reads back the bytes {@link writeCheckpointBytes} stored: `indexeddb://<key>` from the
 * browser's IndexedDB, any other string from a file in Node.
 *
 * @param source - `'indexeddb://<key>'`, or a file path (Node only).
 * @returns a promise of the bytes, a new `Uint8Array` (a plain one, also in Node, not a `Buffer`).
 * @throws {@link ContrastiveError} (the promise rejects) naming the key or path when there is no
 *   such record or file, for a record that holds no bytes, and for the target errors of
 *   {@link writeCheckpointBytes}.
 *
 * @example
 * <!-- snippet setup="checkpoint-file" -->
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { decodeSafetensors, readCheckpointBytes } from 'tfjs-contrastive';
 *
 * const bytes = await readCheckpointBytes('./checkpoints/moco/step-2000.safetensors'); // Node
 * // in a browser: await readCheckpointBytes('indexeddb://moco-step-2000');
 * const { tensors, metadata } = decodeSafetensors(bytes); // metadata.step === '2000'
 * tf.dispose(Object.values(tensors));
 * ```
 */
export async function readCheckpointBytes(source: string): Promise<Uint8Array> {
  const caller = 'readCheckpointBytes';
  const where = locate(caller, 'source', source);
  if (where.kind === 'indexeddb') {
    const idb = indexedDb(caller, 'source', source);
    const value: unknown = await withStore(idb, 'readonly', (store) => store.get(where.key));
    if (value === undefined) {
      throw new ContrastiveError({
        caller,
        argument: 'source',
        expected: 'the key of a stored checkpoint',
        received: `${describeValue(source)}, which IndexedDB database '${CHECKPOINT_DATABASE}' does not hold`,
      });
    }
    if (value instanceof Uint8Array) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    throw new ContrastiveError({
      caller,
      argument: 'source',
      expected: 'the key of a stored checkpoint (bytes)',
      received: `${describeValue(source)}, whose record is ${describeValue(value)}`,
    });
  }
  const fs = await nodeBuiltin<Fs>('fs');
  try {
    const data = await fs.promises.readFile(where.path);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
      throw new ContrastiveError({
        caller,
        argument: 'source',
        expected: 'the path of a checkpoint file',
        received: `${describeValue(source)}, ${code === 'EISDIR' ? 'a folder' : 'which does not exist'}`,
      });
    }
    throw e;
  }
}
