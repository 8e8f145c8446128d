/**
 * ClassTokenPosition on grids of other sizes: the resized position embeddings and their gradient
 * against torch's bilinear interpolate (tests/fixtures/position-interpolation.json, written by
 * scripts/fixtures/position_interpolation.py); tinyVit on multi-crop sizes; errors; no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError } from '../../src/core/index.js';
import { ClassTokenPosition, registerLayers, tinyVit } from '../../src/layers/index.js';
import fixtures from '../fixtures/position-interpolation.json';
import { describeBackends, expectClose } from '../support/backends.js';
import { mixedSizeStep, randomInput, roundTrip } from '../support/layers.js';

registerLayers();

describeBackends('ClassTokenPosition on other grids', ({ tol }) => {
  for (const c of fixtures.cases) {
    const [h, w, d] = c.grid as [number, number, number];
    const [oh, ow] = c.size as [number, number];
    it(`learned ${h}x${w} applied to ${oh}x${ow}: resized embeddings and gradient match torch`, () => {
      const layer = new ClassTokenPosition({ grid: [h, w] });
      const model = tfl.sequential({
        layers: [tfl.layers.inputLayer({ inputShape: [null, null, d] }), layer],
      });
      // cls token 0, class position 0, patch positions = the fixture's grid: zero patches then
      // give [0, resized grid].
      const values = tf.tidy(() => [
        tf.zeros([1, 1, d]),
        tf.concat([tf.zeros([1, 1, d]), tf.tensor(c.x, [1, h * w, d])], 1),
      ]);
      layer.setWeights(values);
      tf.dispose(values);
      const x = tf.zeros([2, oh, ow, d]);
      const weights = tf.tensor(c.w, [1, oh * ow, d]);
      const position = tf.engine().registeredVariables[layer.weights[1]!.name]!;
      let out: tf.Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const y = layer.apply(x) as tf.Tensor;
        out = tf.keep(y);
        // Only the first sample's patch tokens carry the weights.
        return tf.sum(tf.mul(tf.slice(y, [0, 1, 0], [1, oh * ow, d]), weights));
      }, [position]);
      expect(out!.shape).toEqual([2, 1 + oh * ow, d]);
      const grad = grads[position.name]!;
      tf.tidy(() => {
        expectClose(tf.slice(out!, [1, 1, 0], [1, oh * ow, d]), c.y, tol);
        expectClose(tf.slice(out!, [0, 0, 0], [2, 1, d]), new Array(2 * d).fill(0), 0);
        expectClose(tf.slice(grad, [0, 1, 0], [1, h * w, d]), c.grad, tol);
        expectClose(tf.slice(grad, [0, 0, 0], [1, 1, d]), new Array(d).fill(0), 0);
      });
      tf.dispose([x, weights, value, out!, grad]);
      model.dispose();
    });
  }

  it('tinyVit takes multi-crop sizes: 16x16 learned, 8x8 and 24x24 views, and trains on both', async () => {
    const vit = tinyVit({ inputShape: [16, 16, 3], dim: 8, depth: 1, heads: 2 });
    const { before, after } = mixedSizeStep(vit, [16, 8, 24], 8);
    for (const v of vit.trainableWeights) expect(after[v.name], v.name).not.toEqual(before[v.name]);
    // The saved model keeps the learned grid: a reloaded one resizes alike.
    const loaded = await roundTrip(vit);
    const l = randomInput([2, 8, 8, 3], 2);
    const [a, b] = [vit.predict(l) as tf.Tensor, loaded.predict(l) as tf.Tensor];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([l, a, b]);
    vit.dispose();
    loaded.dispose();
  });

  it('a grid with the learned count but other sides is resized, not added as is', () => {
    const layer = new ClassTokenPosition({ grid: [2, 4] });
    const model = tfl.sequential({
      layers: [tfl.layers.inputLayer({ inputShape: [null, null, 1] }), layer],
    });
    // Positions 1..8 over the 2x4 grid, cls token and its position 0; zero patches.
    const values = tf.tidy(() => [
      tf.zeros([1, 1, 1]),
      tf.tensor3d([0, 1, 2, 3, 4, 5, 6, 7, 8], [1, 9, 1]),
    ]);
    layer.setWeights(values);
    tf.dispose(values);
    const x = tf.zeros([1, 4, 2, 1]);
    const y = layer.apply(x) as tf.Tensor;
    // Row i of the 4x2 grid samples the 2x4 one at height (i + 0.5) / 2 - 0.5, column j at
    // width (j + 0.5) * 2 - 0.5, bilinearly: not the learned values in their stored order.
    const expected = [0];
    for (let i = 0; i < 4; i++) {
      const r = Math.min(Math.max((i + 0.5) / 2 - 0.5, 0), 1);
      for (let j = 0; j < 2; j++) {
        const c = Math.min(Math.max((j + 0.5) * 2 - 0.5, 0), 3);
        const at = (rr: number, cc: number): number => 1 + rr * 4 + cc;
        const [r0, c0] = [Math.floor(r), Math.floor(c)];
        const [r1, c1] = [Math.min(r0 + 1, 1), Math.min(c0 + 1, 3)];
        const [tr, tc] = [r - r0, c - c0];
        expected.push(
          (1 - tr) * ((1 - tc) * at(r0, c0) + tc * at(r0, c1)) +
            tr * ((1 - tc) * at(r1, c0) + tc * at(r1, c1)),
        );
      }
    }
    expectClose(y, expected, 1e-5);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('tokens of another count, or an unknown grid with no args.grid, are the library error', () => {
    const tokens = new ClassTokenPosition({});
    const model = tfl.sequential({
      layers: [tfl.layers.inputLayer({ inputShape: [4, 6] }), tokens],
    });
    const x = randomInput([2, 5, 6], 1);
    expect(() => tokens.apply(x)).toThrow(ContrastiveError);
    expect(() => tokens.apply(x)).toThrow(/inputs.*4 tokens/s);
    x.dispose();
    model.dispose();
    expect(() =>
      tfl.sequential({
        layers: [
          tfl.layers.inputLayer({ inputShape: [null, null, 6] }),
          new ClassTokenPosition({}),
        ],
      }),
    ).toThrow(/args\.grid/);
    expect(() => new ClassTokenPosition({ grid: [2] as unknown as [number, number] })).toThrow(
      /args\.grid/,
    );
    expect(() => new ClassTokenPosition({ grid: [2, 0] })).toThrow(/args\.grid\[1\]/);
  });
});
