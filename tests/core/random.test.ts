import { describe, expect, it } from 'vitest';
import fixtures from '../fixtures/core.json';
import { ContrastiveError, SeededRandom } from '../../src/core/index.js';

describe('SeededRandom', () => {
  it('is reproducible from a seed and differs between seeds', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const c = new SeededRandom(43);
    const sa = Array.from({ length: 8 }, () => a.nextUint32());
    const sb = Array.from({ length: 8 }, () => b.nextUint32());
    const sc = Array.from({ length: 8 }, () => c.nextUint32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    expect(new SeededRandom('run-1').uniform()).toBe(new SeededRandom('run-1').uniform());
  });

  it('draws uniforms in [0, 1) with mean 1/2 and variance 1/12', () => {
    const r = new SeededRandom(1);
    const n = 200_000;
    let sum = 0;
    let sumSq = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
      sumSq += u * u;
    }
    const mean = sum / n;
    const variance = sumSq / n - mean * mean;
    expect(outside).toBe(0);
    // Standard error of the mean is sqrt(1/12/n) = 6.5e-4; 5 sigma.
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(1e-3);
  });

  it('draws unbiased integers: chi-square over 10 bins stays below the 0.999 quantile', () => {
    const r = new SeededRandom(7);
    const counts = new Array<number>(10).fill(0);
    const draws = r.integers(100_000, 10);
    for (const d of draws) counts[d] = (counts[d] as number) + 1;
    const expected = 10_000;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(27.88); // chi-square, 9 degrees of freedom, p = 0.999
    expect(draws.every((d) => d >= 0 && d < 10)).toBe(true);
  });

  it('draws normals with mean 0 and variance 1', () => {
    const r = new SeededRandom(3);
    const n = 100_000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      sum += z;
      sumSq += z * z;
    }
    expect(Math.abs(sum / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(sumSq / n - 1)).toBeLessThan(0.02);
  });

  it('makes permutations that hold every index once', () => {
    const p = new SeededRandom(5).permutation(1000);
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(p.slice(0, 10))).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('restores its state exactly, so a resumed run draws the same numbers', () => {
    const r = new SeededRandom(9);
    r.uniform();
    const saved = JSON.parse(JSON.stringify(r.getState())) as [number, number, number, number];
    const next = [r.uniform(), r.normal(), r.integer(100)];
    const resumed = new SeededRandom(0);
    resumed.setState(saved);
    expect([resumed.uniform(), resumed.normal(), resumed.integer(100)]).toEqual(next);
  });

  it('forks independent streams deterministically', () => {
    const root1 = new SeededRandom(11);
    const root2 = new SeededRandom(11);
    const a1 = root1.fork();
    const a2 = root2.fork();
    expect(a1.nextUint32()).toBe(a2.nextUint32());
    expect(root1.fork().nextUint32()).not.toBe(a1.nextUint32());
  });

  it('gives integer seeds for tfjs ops in [0, 2^31)', () => {
    const r = new SeededRandom(2);
    for (let i = 0; i < 100; i++) {
      const s = r.tfSeed();
      expect(Number.isInteger(s) && s >= 0 && s < 2 ** 31).toBe(true);
    }
  });

  it('rejects bad seeds, bounds and states with ContrastiveErrors', () => {
    expect(() => new SeededRandom(1.5)).toThrow("SeededRandom: argument 'seed' must be an integer");
    const r = new SeededRandom(0);
    expect(() => r.integer(0)).toThrow(ContrastiveError);
    expect(() => r.uniformRange(1, 0)).toThrow("argument 'high' must be a finite number >= 1");
    expect(() => {
      r.setState([0, 0, 0, 0]);
    }).toThrow('four unsigned 32-bit integers, not all zero');
    expect(() => r.permutation(-1)).toThrow(ContrastiveError);
  });
});

describe('SeededRandom against an independent xoshiro128** (tests/fixtures/core.json)', () => {
  const cases = (fixtures as { xoshiro128ss: { seed: number; outputs: number[] }[] }).xoshiro128ss;
  for (const c of cases) {
    it(`seed ${c.seed}: the first ${c.outputs.length} outputs`, () => {
      const r = new SeededRandom(c.seed);
      expect(Array.from({ length: c.outputs.length }, () => r.nextUint32())).toEqual(c.outputs);
    });
  }
});
