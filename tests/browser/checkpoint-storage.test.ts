/**
 * Checkpoint bytes in IndexedDB, in headless Chromium: a round trip, a replaced record, exactly
 * a view's bytes stored, a missing key, a file path refused, and a safetensors checkpoint of
 * tensors saved and restored with identical values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestPage, type BrowserPage } from './server.js';

describe('writeCheckpointBytes / readCheckpointBytes in headless Chromium (IndexedDB)', () => {
  let p: BrowserPage;
  beforeAll(async () => {
    p = await openTestPage();
  });
  afterAll(async () => {
    await p.close();
  });

  it('round-trips bytes, replaces a record, and stores exactly the bytes of a view', async () => {
    const result = await p.page.evaluate(async () => {
      const { lib } = window;
      const bytes = Uint8Array.from({ length: 5000 }, (_, i) => (i * 31) % 256);
      await lib.writeCheckpointBytes('indexeddb://test/a', bytes);
      const back = await lib.readCheckpointBytes('indexeddb://test/a');
      const big = Uint8Array.from({ length: 64 }, (_, i) => i);
      await lib.writeCheckpointBytes('indexeddb://test/a', big.subarray(10, 13));
      const replaced = await lib.readCheckpointBytes('indexeddb://test/a');
      // The record sits in the library's own database and store.
      const stored = await new Promise<unknown>((resolve, reject) => {
        const req = indexedDB.open(lib.CHECKPOINT_DATABASE);
        req.onerror = () => reject(req.error ?? new Error('open failed'));
        req.onsuccess = () => {
          const db = req.result;
          const get = db
            .transaction(lib.CHECKPOINT_STORE, 'readonly')
            .objectStore(lib.CHECKPOINT_STORE)
            .get('test/a');
          get.onsuccess = () => {
            db.close();
            resolve(get.result);
          };
          get.onerror = () => reject(get.error ?? new Error('get failed'));
        };
      });
      return {
        same: back.length === bytes.length && back.every((b, i) => b === bytes[i]),
        isUint8Array: back instanceof Uint8Array,
        replaced: Array.from(replaced),
        storedBufferLength: stored instanceof Uint8Array ? stored.buffer.byteLength : -1,
      };
    });
    expect(result).toEqual({
      same: true,
      isUint8Array: true,
      replaced: [10, 11, 12],
      storedBufferLength: 3,
    });
  });

  it('a missing key and a file path are ContrastiveErrors naming them', async () => {
    const errors = await p.page.evaluate(async () => {
      const { lib } = window;
      const describe = async (f: () => Promise<unknown>): Promise<string> => {
        try {
          await f();
          return 'no error';
        } catch (e) {
          return e instanceof lib.ContrastiveError ? `ContrastiveError: ${e.message}` : String(e);
        }
      };
      return {
        missing: await describe(() => lib.readCheckpointBytes('indexeddb://never-written')),
        writePath: await describe(() =>
          lib.writeCheckpointBytes('./ckpt.safetensors', new Uint8Array(1)),
        ),
        readPath: await describe(() => lib.readCheckpointBytes('/tmp/ckpt.safetensors')),
      };
    });
    expect(errors.missing).toMatch(
      /^ContrastiveError: .*"indexeddb:\/\/never-written".*does not hold/,
    );
    expect(errors.writePath).toMatch(/^ContrastiveError: .*File paths need Node/);
    expect(errors.readPath).toMatch(/^ContrastiveError: .*File paths need Node/);
  });

  it('a safetensors checkpoint saved to IndexedDB restores identical tensors (cpu and wasm)', async () => {
    for (const backend of ['cpu', 'wasm']) {
      const result = await p.page.evaluate(async (name) => {
        const { tf, lib } = window;
        await lib.selectBackend(name as 'cpu', { wasmModule: window.wasm, wasmPaths: '/wasm/' });
        const before = tf.memory().numTensors;
        const keys = tf.randomNormal([32, 16], 0, 1, 'float32', 9);
        const pointer = tf.scalar(17, 'int32');
        const mask = tf.tensor([true, false, false, true], [2, 2], 'bool');
        const bytes = await lib.encodeSafetensors({ keys, pointer, mask }, { step: '3' });
        await lib.writeCheckpointBytes(`indexeddb://queue-${name}`, bytes);
        const again = await lib.readCheckpointBytes(`indexeddb://queue-${name}`);
        const { tensors, metadata } = lib.decodeSafetensors(again);
        const same = (a: ArrayLike<number>, b: ArrayLike<number>): boolean =>
          a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));
        const out = {
          backend: tf.getBackend(),
          metadata,
          bytesSame: same(again, bytes),
          keys: same(tensors.keys!.dataSync(), keys.dataSync()),
          pointer: [tensors.pointer!.dtype, Array.from(tensors.pointer!.dataSync())],
          mask: [tensors.mask!.dtype, Array.from(tensors.mask!.dataSync())],
        };
        tf.dispose([keys, pointer, mask, ...Object.values(tensors)]);
        return { ...out, leaked: tf.memory().numTensors - before };
      }, backend);
      expect(result).toEqual({
        backend,
        metadata: { step: '3' },
        bytesSame: true,
        keys: true,
        pointer: ['int32', [17]],
        mask: ['bool', [1, 0, 0, 1]],
        leaked: 0,
      });
    }
  });
});
