import { ContrastiveError } from './errors.js';
import { checkNumber, describeValue } from './checks.js';

/** The complete state of a {@link SeededRandom}, for checkpoints. */
export type SeededRandomState = readonly [number, number, number, number];

const UINT32 = 0x1_0000_0000;

// splitmix32 spreads a 32-bit seed over the 128-bit xoshiro state, so that nearby seeds give
// unrelated streams and the all-zero state (a fixed point of xoshiro) cannot occur.
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function hashString(text: string): number {
  // FNV-1a, so that string seeds such as 'run-1' are accepted.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The seeded random source behind everything random in the library (negative sampling, memory
 * bank initialisation, augmentation), so that a run is reproducible from one seed.
 *
 * It is xoshiro128** (Blackman and Vigna, 2018): 128 bits of state, period 2^128 - 1, fast in
 * JavaScript's 32-bit integer arithmetic, seeded through splitmix32. Its state can be saved with
 * {@link SeededRandom.getState} and restored with {@link SeededRandom.setState}, so that a
 * resumed run draws exactly what an uninterrupted one would have drawn.
 *
 * @example
 * ```ts
 * import { SeededRandom } from 'tfjs-contrastive';
 *
 * const rng = new SeededRandom(42);
 * rng.uniform();               // a float in [0, 1)
 * rng.integer(4096);           // an integer in [0, 4096), unbiased
 * rng.integers(10, 4096);      // Int32Array of 10 such integers
 * const child = rng.fork();    // an independent stream, e.g. for augmentation
 * ```
 */
export class SeededRandom {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /**
   * @param seed - a 32-bit integer (other numbers are truncated to their low 32 bits) or a
   *   string, hashed to 32 bits. Default `0`.
   * @throws {@link ContrastiveError} when `seed` is neither a finite number nor a string.
   */
  constructor(seed: number | string = 0) {
    let s: number;
    if (typeof seed === 'string') s = hashString(seed);
    else {
      checkNumber('SeededRandom', 'seed', seed, { integer: true });
      s = seed;
    }
    const next = splitmix32(s);
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /**
   * The next 32 random bits.
   *
   * @returns an integer in `[0, 2^32)`.
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * new SeededRandom(1).nextUint32();
   * ```
   */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /**
   * A uniform float in `[0, 1)` with 53 random bits.
   *
   * @returns a number in `[0, 1)`.
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * new SeededRandom(1).uniform();
   * ```
   */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * A uniform float in `[low, high)`.
   *
   * @param low - the lower bound.
   * @param high - the upper bound, `>= low`.
   * @returns a number in `[low, high)` (exactly `low` when they are equal).
   * @throws {@link ContrastiveError} when the bounds are not finite or `high < low`.
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * new SeededRandom(1).uniformRange(0.08, 1); // a crop scale
   * ```
   */
  uniformRange(low: number, high: number): number {
    checkNumber('SeededRandom.uniformRange', 'low', low);
    checkNumber('SeededRandom.uniformRange', 'high', high, { min: low });
    return low + (high - low) * this.uniform();
  }

  /**
   * A uniform integer in `[0, n)`, without modulo bias (rejection sampling).
   *
   * @param n - the number of outcomes, an integer in `[1, 2^32]`.
   * @returns an integer in `[0, n)`.
   * @throws {@link ContrastiveError} when `n` is not an integer in range.
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * new SeededRandom(1).integer(6); // a die roll minus one
   * ```
   */
  integer(n: number): number {
    checkNumber('SeededRandom.integer', 'n', n, { integer: true, min: 1, max: UINT32 });
    return this.integerUnchecked(n);
  }

  /**
   * `count` uniform integers in `[0, n)`, drawn with replacement, e.g. the K noise indices of
   * InstDisc's NCE.
   *
   * @param count - how many to draw, a non-negative integer.
   * @param n - the number of outcomes, an integer in `[1, 2^31)`.
   * @returns an `Int32Array` of length `count`.
   * @throws {@link ContrastiveError} when `count` or `n` is out of range.
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * const noise = new SeededRandom(7).integers(4096, 50000);
   * ```
   */
  integers(count: number, n: number): Int32Array {
    checkNumber('SeededRandom.integers', 'count', count, { integer: true, min: 0 });
    checkNumber('SeededRandom.integers', 'n', n, { integer: true, min: 1, lessThan: 2 ** 31 });
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.integerUnchecked(n);
    return out;
  }

  /**
   * A standard normal variate (Marsaglia's polar method).
   *
   * @returns a sample of N(0, 1).
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * new SeededRandom(1).normal();
   * ```
   */
  normal(): number {
    // The polar method yields two variates; the second is discarded so that the generator's
    // whole state stays the four integers of getState().
    for (;;) {
      const u = 2 * this.uniform() - 1;
      const v = 2 * this.uniform() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) return u * Math.sqrt((-2 * Math.log(s)) / s);
    }
  }

  /**
   * A uniformly random permutation of `0 .. n-1` (Fisher-Yates).
   *
   * @param n - the length, a non-negative integer below 2^31.
   * @returns an `Int32Array` holding each of `0 .. n-1` once.
   * @throws {@link ContrastiveError} when `n` is out of range.
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * const order = new SeededRandom(3).permutation(60000); // one epoch's order
   * ```
   */
  permutation(n: number): Int32Array {
    checkNumber('SeededRandom.permutation', 'n', n, { integer: true, min: 0, lessThan: 2 ** 31 });
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.integerUnchecked(i + 1);
      const t = out[i] as number;
      out[i] = out[j] as number;
      out[j] = t;
    }
    return out;
  }

  /**
   * A seed for a tfjs random op (`tf.randomUniform(shape, 0, 1, 'float32', seed)`), drawn from
   * this stream, so that tfjs's own sampling is reproducible too.
   *
   * @returns an integer in `[0, 2^31)`.
   *
   * @example
   * ```ts
   * import * as tf from '@tensorflow/tfjs-core';
   * import { SeededRandom } from 'tfjs-contrastive';
   * const rng = new SeededRandom(5);
   * const noise = tf.randomNormal([4, 8], 0, 1, 'float32', rng.tfSeed());
   * ```
   */
  tfSeed(): number {
    return this.nextUint32() >>> 1;
  }

  /**
   * A new, independent stream derived from this one (this one advances by four draws), so that
   * separate consumers (say, augmentation and negative sampling) do not shift each other's
   * draws when one of them changes.
   *
   * @returns a new {@link SeededRandom}.
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * const root = new SeededRandom(0);
   * const augmentRng = root.fork();
   * const samplerRng = root.fork();
   * ```
   */
  fork(): SeededRandom {
    const child = new SeededRandom(0);
    child.setState([this.nextUint32(), this.nextUint32(), this.nextUint32(), this.nextUint32()]);
    return child;
  }

  /**
   * The complete state, for a checkpoint.
   *
   * @returns four unsigned 32-bit integers.
   *
   * @example
   * ```ts
   * import { SeededRandom } from 'tfjs-contrastive';
   * const rng = new SeededRandom(5);
   * const saved = rng.getState();
   * const a = rng.uniform();
   * rng.setState(saved);
   * rng.uniform() === a; // true
   * ```
   */
  getState(): SeededRandomState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /**
   * Restores a state saved by {@link SeededRandom.getState}.
   *
   * @param state - four unsigned 32-bit integers, not all zero.
   * @throws {@link ContrastiveError} when `state` is not four such integers.
   *
   * @example
   * ```ts
   * import { SeededRandom, type SeededRandomState } from 'tfjs-contrastive';
   * const text = JSON.stringify(new SeededRandom(5).getState()); // e.g. from a checkpoint's metadata
   * const rng = new SeededRandom(0);
   * rng.setState(JSON.parse(text) as SeededRandomState);
   * ```
   */
  setState(state: SeededRandomState): void {
    // Checked at run time: a state read back from a checkpoint file is untyped.
    const values = state as readonly unknown[];
    const valid =
      Array.isArray(values) &&
      values.length === 4 &&
      values.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < UINT32) &&
      values.some((v) => v !== 0);
    if (!valid) {
      throw new ContrastiveError({
        caller: 'SeededRandom.setState',
        argument: 'state',
        expected: 'four unsigned 32-bit integers, not all zero',
        received: Array.isArray(values)
          ? `[${values.map(String).join(', ')}]`
          : describeValue(state),
      });
    }
    [this.s0, this.s1, this.s2, this.s3] = state;
  }

  private integerUnchecked(n: number): number {
    if (n === UINT32) return this.nextUint32();
    // Rejection sampling: accepting only draws below the largest multiple of n removes modulo bias.
    const limit = UINT32 - (UINT32 % n);
    for (;;) {
      const r = this.nextUint32();
      if (r < limit) return r % n;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
