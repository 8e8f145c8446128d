import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { simclrV1Projector, smallConvNet } from '../../src/layers/index.js';
import { disposeModel } from '../../src/methods/index.js';
import { describeBackends } from '../support/backends.js';

// disposeModel frees every weight of a model and of the models nested in it, in each way
// tfjs-layers nests them; the harness's leak check (tensors before and after each test) is the
// assertion that nothing is left, and each case also checks that it does not throw.
describeBackends('disposeModel', () => {
  it('a Sequential inside a Sequential', () => {
    const before = tf.memory().numTensors;
    const encoder = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [8], units: 6 })] });
    const head = simclrV1Projector({ inputDim: 6 });
    const model = tfl.sequential({ layers: [encoder, head] });
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    expect(() => {
      disposeModel(model);
    }).not.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a functional backbone with a Sequential head applied to its output', () => {
    const before = tf.memory().numTensors;
    const backbone = smallConvNet({ inputShape: [8, 8, 1], widths: [4, 8, 8], seed: 1 });
    const head = simclrV1Projector({ inputDim: 8 });
    const input = tfl.input({ shape: [8, 8, 1] });
    const out = head.apply(backbone.apply(input)) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    expect(() => {
      disposeModel(model);
    }).not.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('models nested two deep', () => {
    const before = tf.memory().numTensors;
    const inner = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 4 })] });
    const middle = tfl.sequential({ layers: [inner, tfl.layers.dense({ units: 3 })] });
    const outer = tfl.sequential({ layers: [middle, tfl.layers.dense({ units: 2 })] });
    expect(() => {
      disposeModel(outer);
    }).not.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });
});
