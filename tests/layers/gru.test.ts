/**
 * The functional GRU of the CPC preset: every step's state against the GRU equations evaluated in
 * float64 on the host, causality along time, an orthonormal seeded recurrent kernel, a training
 * step changes every weight, config and save/load round trips, no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { Gru } from '../../src/layers/gru.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomInput, roundTrip } from '../support/layers.js';

tf.serialization.registerClass(Gru);

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** The GRU (Cho et al. 2014, reset before the recurrent product) in float64, gates z, r, h. */
function referenceGru(
  x: number[],
  [n, t, f]: [number, number, number],
  w: number[],
  u: number[],
  b: number[],
  d: number,
): number[] {
  const out: number[] = [];
  for (let s = 0; s < n; s++) {
    let h = new Array<number>(d).fill(0);
    const states: number[][] = [];
    for (let step = 0; step < t; step++) {
      const xs = x.slice((s * t + step) * f, (s * t + step + 1) * f);
      const pre = (gate: number, j: number, state: number[]): number => {
        let v = b[gate * d + j] as number;
        for (let i = 0; i < f; i++)
          v += (xs[i] as number) * (w[i * 3 * d + gate * d + j] as number);
        for (let i = 0; i < d; i++)
          v += (state[i] as number) * (u[i * 3 * d + gate * d + j] as number);
        return v;
      };
      const z = h.map((_, j) => sigmoid(pre(0, j, h)));
      const r = h.map((_, j) => sigmoid(pre(1, j, h)));
      const rh = h.map((v, j) => v * (r[j] as number));
      const cand = h.map((_, j) => Math.tanh(pre(2, j, rh)));
      h = h.map((v, j) => (1 - (z[j] as number)) * v + (z[j] as number) * (cand[j] as number));
      states.push(h);
    }
    out.push(...states.flat());
  }
  return out;
}

describeBackends('Gru layer', ({ tol }) => {
  it('every step matches the GRU equations (random weights, biases included)', () => {
    const layer = new Gru({ units: 3, seed: 2 });
    const model = tfl.sequential({
      layers: [tfl.layers.inputLayer({ inputShape: [null, 4] }), layer],
    });
    // Non-zero biases, so their gate order is checked too.
    const bias = randomInput([9], 5);
    layer.setWeights([
      layer.getWeights()[0] as tf.Tensor,
      layer.getWeights()[1] as tf.Tensor,
      bias,
    ]);
    const x = randomInput([2, 5, 4], 1);
    const y = model.predict(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 5, 3]);
    const [w, u, b] = layer.getWeights().map((v) => Array.from(v.dataSync()));
    const expected = referenceGru(Array.from(x.dataSync()), [2, 5, 4], w!, u!, b!, 3);
    expectClose(y, expected, tol, 'gru states');
    tf.dispose([x, y, bias]);
    model.dispose();
  });

  it('causal: changing step t changes no state before t', () => {
    const model = tfl.sequential({
      layers: [new Gru({ units: 4, seed: 1, inputShape: [null, 3] })],
    });
    const x = randomInput([2, 6, 3], 2);
    const x2 = tf.tidy(() =>
      tf.concat([tf.slice(x, [0, 0, 0], [-1, 4, -1]), randomInput([2, 2, 3], 3)], 1),
    );
    const [a, b] = [model.predict(x) as tf.Tensor, model.predict(x2) as tf.Tensor];
    tf.tidy(() => {
      expectClose(tf.slice(b, [0, 0, 0], [-1, 4, -1]), tf.slice(a, [0, 0, 0], [-1, 4, -1]), tol);
      const moved = tf.max(
        tf.abs(tf.sub(tf.slice(b, [0, 4, 0], [-1, 1, -1]), tf.slice(a, [0, 4, 0], [-1, 1, -1]))),
      );
      expect(moved.dataSync()[0]).toBeGreaterThan(1e-3);
    });
    tf.dispose([x, x2, a, b]);
    model.dispose();
  });

  it('seeded: same seed same weights; the recurrent kernel has orthonormal rows', () => {
    const make = (seed: number): tfl.Sequential =>
      tfl.sequential({ layers: [new Gru({ units: 4, seed, inputShape: [null, 3] })] });
    const [m1, m2, m3] = [make(7), make(7), make(8)];
    const w = (m: tfl.Sequential): number[][] =>
      m.getWeights().map((v) => Array.from(v.dataSync()));
    expect(w(m2)).toEqual(w(m1));
    expect(w(m3)[1]).not.toEqual(w(m1)[1]);
    tf.tidy(() => {
      const u = m1.getWeights()[1] as tf.Tensor2D; // [4, 12]
      expectClose(tf.matMul(u, u, false, true), tf.eye(4), 1e-5, 'U U^T');
    });
    for (const m of [m1, m2, m3]) m.dispose();
  });

  it('a training step changes every weight; config and save/load round trip', async () => {
    const layer = new Gru({ units: 3, seed: 4 });
    const model = tfl.sequential({
      layers: [tfl.layers.inputLayer({ inputShape: [null, 2] }), layer],
    });
    const x = randomInput([3, 4, 2], 6);
    const before = model.getWeights().map((v) => Array.from(v.dataSync()));
    const opt = tf.train.sgd(0.1);
    tf.tidy(() => {
      opt.minimize(() => tf.sum(tf.square(tf.sub(model.apply(x) as tf.Tensor, 0.5))) as tf.Scalar);
    });
    const after = model.getWeights().map((v) => Array.from(v.dataSync()));
    after.forEach((v, i) => expect(v, `weight ${i}`).not.toEqual(before[i]));
    const config = layer.getConfig();
    expect(config).toMatchObject({ units: 3, seed: 4 });
    const loaded = await roundTrip(model);
    const [a, b] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(() => new Gru({ units: 0 })).toThrow(/args\.units/);
    tf.dispose([x, a, b]);
    opt.dispose();
    model.dispose();
    loaded.dispose();
  });
});
