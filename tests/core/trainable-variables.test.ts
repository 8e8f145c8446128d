import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { ContrastiveError, trainableVariables } from '../../src/index.js';
import { describeBackends } from '../support/backends.js';

describeBackends('trainableVariables', () => {
  it('returns the tf.Variables of the models in order, each once, and minimize trains exactly those', () => {
    const before = tf.memory().numTensors;
    const shared = tfl.layers.dense({ units: 3, name: 'tv_shared' });
    const input = tfl.input({ shape: [4] });
    const a = tfl.model({ inputs: input, outputs: shared.apply(input) as tfl.SymbolicTensor });
    const head = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [3], units: 2 })] });
    const other = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 2 })] });
    const vars = trainableVariables(a, head, shared);
    expect(vars.length).toBe(4);
    expect(vars.every((v) => v instanceof tf.Variable)).toBe(true);
    expect(vars.map((v) => v.shape)).toEqual([[4, 3], [3], [3, 2], [2]]);

    const frozen = other.getWeights().map((w) => w.dataSync().slice());
    const trainedBefore = vars.map((v) => v.dataSync().slice());
    const x = tf.randomNormal([8, 4], 0, 1, 'float32', 1);
    const opt = tf.train.sgd(0.1);
    // `other` shares nothing with the list: its variables are trainable but must not move.
    opt.minimize(
      () =>
        tf.add(
          tf.mean(tf.square(head.apply(a.apply(x)) as tf.Tensor)),
          tf.mean(tf.square(other.apply(x) as tf.Tensor)),
        ) as tf.Scalar,
      false,
      vars,
    );
    expect(other.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(
      frozen.map((f) => Array.from(f)),
    );
    vars.forEach((v, i) =>
      expect(Array.from(v.dataSync())).not.toEqual(Array.from(trainedBefore[i]!)),
    );
    x.dispose();
    opt.dispose();
    a.dispose();
    head.dispose();
    other.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names the argument that is not a model', () => {
    const m = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
    expect(() => trainableVariables(m, {} as never)).toThrow(ContrastiveError);
    const s = tf.scalar(1);
    expect(() => trainableVariables(m, s as never)).toThrow(
      /trainableVariables: argument 'models\[1\]' must be a tfjs-layers model or layer/,
    );
    tf.dispose(s);
    m.dispose();
  });
});
