/**
 * Checkpoint bytes in Node: a file round trip into a nested folder that does not exist yet,
 * replacing an earlier file with no temporary file left over, `file://` paths, missing files,
 * and the targets Node cannot serve (IndexedDB) or that are not targets at all. The IndexedDB
 * round trip runs in headless Chromium: tests/browser/checkpoint-storage.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ContrastiveError,
  decodeSafetensors,
  encodeSafetensors,
  readCheckpointBytes,
  writeCheckpointBytes,
} from '../../src/index.js';
import { describeBackends } from '../support/backends.js';

const root = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-checkpoints-'));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<ContrastiveError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ContrastiveError) return e;
    throw new Error(`expected a ContrastiveError, got ${String(e)}`);
  }
  throw new Error('expected a ContrastiveError, but the promise resolved');
}

describe('writeCheckpointBytes / readCheckpointBytes in Node (files)', () => {
  it('round-trips bytes through a file in a nested folder it creates', async () => {
    const path = join(root, 'run-1', 'moco', 'step-100.safetensors');
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) % 256);
    await writeCheckpointBytes(path, bytes);
    expect(Array.from(readFileSync(path))).toEqual(Array.from(bytes));
    const back = await readCheckpointBytes(path);
    expect(Array.from(back)).toEqual(Array.from(bytes));
    // A plain Uint8Array, not a Buffer (whose slice() is a view, not a copy).
    expect(Object.getPrototypeOf(back)).toBe(Uint8Array.prototype);
  });

  it('stores exactly the bytes of a view, replaces an earlier file, and leaves no temporary file', async () => {
    const folder = join(root, 'replace');
    const path = join(folder, 'ckpt.safetensors');
    await writeCheckpointBytes(path, new Uint8Array(64).fill(7));
    const big = Uint8Array.from({ length: 32 }, (_, i) => i);
    await writeCheckpointBytes(path, big.subarray(5, 9));
    expect(Array.from(await readCheckpointBytes(path))).toEqual([5, 6, 7, 8]);
    expect(readdirSync(folder)).toEqual(['ckpt.safetensors']);
  });

  it('takes a file:// path as tfjs-node does, and an empty file', async () => {
    const path = join(root, 'scheme', 'x.safetensors');
    await writeCheckpointBytes(`file://${path}`, new Uint8Array(0));
    expect(readFileSync(path).length).toBe(0);
    expect((await readCheckpointBytes(`file://${path}`)).length).toBe(0);
  });

  it('a missing file, a missing folder or a folder is a ContrastiveError naming the path', async () => {
    const missing = join(root, 'nothing-here.safetensors');
    const e = await rejection(readCheckpointBytes(missing));
    expect(e.caller).toBe('readCheckpointBytes');
    expect(e.argument).toBe('source');
    expect(e.message).toContain(missing);
    expect(e.message).toMatch(/does not exist/);
    const inMissingFolder = join(root, 'no-such-folder', 'x.safetensors');
    expect((await rejection(readCheckpointBytes(inMissingFolder))).message).toContain(
      inMissingFolder,
    );
    mkdirSync(join(root, 'a-folder'));
    expect((await rejection(readCheckpointBytes(join(root, 'a-folder')))).message).toMatch(
      /a folder/,
    );
  });

  it('indexeddb:// in Node is a ContrastiveError saying there is no IndexedDB', async () => {
    const w = await rejection(writeCheckpointBytes('indexeddb://moco', new Uint8Array(1)));
    expect(w.message).toMatch(/no IndexedDB/);
    expect(w.caller).toBe('writeCheckpointBytes');
    const r = await rejection(readCheckpointBytes('indexeddb://moco'));
    expect(r.message).toMatch(/"indexeddb:\/\/moco", but this environment has no IndexedDB/);
  });

  it('rejects what is not a target, and bytes that are not a Uint8Array', async () => {
    for (const target of [
      '',
      42,
      undefined,
      'indexeddb://',
      'http://example.com/ckpt',
      'localstorage://x',
    ]) {
      const e = await rejection(writeCheckpointBytes(target as string, new Uint8Array(1)));
      expect(e.argument).toBe('target');
      const r = await rejection(readCheckpointBytes(target as string));
      expect(r.argument).toBe('source');
    }
    for (const bytes of [[1, 2], new ArrayBuffer(2), 'ab', new Float32Array(1)]) {
      const e = await rejection(
        writeCheckpointBytes(join(root, 'never'), bytes as unknown as Uint8Array),
      );
      expect(e.argument).toBe('bytes');
    }
    expect(readdirSync(root)).not.toContain('never');
  });
});

describeBackends('a safetensors checkpoint through a file', () => {
  it('encode, write, read, decode gives the same tensors and metadata', async () => {
    const keys = tf.randomNormal([16, 8], 0, 1, 'float32', 3);
    const pointer = tf.scalar(5, 'int32');
    const filled = tf.tensor([true, false, true], [3], 'bool');
    const path = join(root, 'roundtrip', `state-${tf.getBackend()}.safetensors`);
    await writeCheckpointBytes(
      path,
      await encodeSafetensors({ keys, pointer, filled }, { step: '7' }),
    );
    const { tensors, metadata } = decodeSafetensors(await readCheckpointBytes(path));
    expect(metadata).toEqual({ step: '7' });
    expect(Array.from(tensors.keys!.dataSync())).toEqual(Array.from(keys.dataSync()));
    expect(tensors.pointer!.dtype).toBe('int32');
    expect(Array.from(tensors.pointer!.dataSync())).toEqual([5]);
    expect(tensors.filled!.dtype).toBe('bool');
    expect(Array.from(tensors.filled!.dataSync())).toEqual([1, 0, 1]);
    tf.dispose([keys, pointer, filled, ...Object.values(tensors)]);
  });
});
