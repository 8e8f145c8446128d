/**
 * AdamW against scripts/fixtures/adamw_reference.py (torch.optim.AdamW in float64): four settings,
 * a bit-exact resume, a closed-form first step through minimize, agreement with tf.train.adam,
 * config round trip, slot bookkeeping and errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import {
  AdamWOptimizer,
  ContrastiveError,
  adamw,
  registerAdamWOptimizer,
  renameOptimizerWeights,
  type AdamWOptions,
  type NamedTensor,
} from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

interface Setting {
  options: {
    learningRate: number;
    weightDecay: number;
    beta1?: number;
    beta2?: number;
    epsilon?: number;
    exclude?: string;
    excludeVectors?: boolean;
    change?: { at: number; learningRate: number; weightDecay: number };
    frozen?: { name: string; steps: number };
  };
  after: Record<string, number[]>[];
}

const ref = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../fixtures/adamw-reference.json'), 'utf8'),
) as {
  shapes: Record<string, number[]>;
  start: Record<string, number[]>;
  grads: Record<string, number[]>[];
  adamw: Record<string, Setting>;
};
const KEYS = Object.keys(ref.shapes);
const STEPS = ref.grads.length;

let counter = 0;
/** Fresh variables (unique names `<prefix><n>/<key>`) holding `values` (default: the start). */
function variables(
  prefix: string,
  values: Record<string, ArrayLike<number>> = ref.start,
): Record<string, tf.Variable> {
  counter++;
  return tf.tidy(() =>
    Object.fromEntries(
      KEYS.map((k) => [
        k,
        tf.variable(
          tf.tensor(Array.from(values[k]!), ref.shapes[k]),
          true,
          `${prefix}${counter}/${k}`,
        ),
      ]),
    ),
  );
}

function optionsOf(s: Setting): AdamWOptions {
  const options: Partial<Setting['options']> = { ...s.options };
  delete options.change;
  delete options.frozen;
  return options as AdamWOptions;
}

/** Step i of a setting: the midway change, then the gradients (a frozen variable gets none). */
function step(opt: AdamWOptimizer, vars: Record<string, tf.Variable>, s: Setting, i: number): void {
  const { change, frozen } = s.options;
  if (change !== undefined && i === change.at) {
    opt.setLearningRate(change.learningRate);
    opt.setWeightDecay(change.weightDecay);
  }
  tf.tidy(() => {
    const grads: tf.NamedTensorMap = {};
    for (const k of KEYS) {
      if (frozen !== undefined && k === frozen.name && i < frozen.steps) continue;
      grads[vars[k]!.name] = tf.tensor(ref.grads[i]![k]!, ref.shapes[k]);
    }
    opt.applyGradients(grads);
  });
}

/** A variable that owns its initial value (tf.variable of a fresh tensor leaks that tensor). */
function variable(init: () => tf.Tensor, name: string): tf.Variable {
  return tf.tidy(() => tf.variable(init(), true, name));
}

async function values(vars: Record<string, tf.Variable>): Promise<Float32Array[]> {
  return Promise.all(KEYS.map(async (k) => (await vars[k]!.data()) as Float32Array));
}

/** getWeights' values by name, read back (slots are valid only until the next step). */
async function stateOf(opt: AdamWOptimizer): Promise<Map<string, number[]>> {
  const weights = await opt.getWeights();
  const out = new Map<string, number[]>();
  for (const w of weights) out.set(w.name, Array.from(await w.tensor.data()));
  weights.filter((w) => w.name === 'iter').forEach((w) => w.tensor.dispose());
  return out;
}

describeBackends('AdamW', ({ name: backend, tol }) => {
  for (const [setting, s] of Object.entries(ref.adamw)) {
    it(`matches torch.optim.AdamW step by step: ${setting}`, async () => {
      const vars = variables(`ref_${setting}`);
      const opt = adamw(optionsOf(s));
      for (let i = 0; i < STEPS; i++) {
        step(opt, vars, s, i);
        for (const k of KEYS)
          expectClose(await vars[k]!.data(), s.after[i]![k]!, tol, `${setting} step ${i}: ${k}`);
      }
      expect(opt.iterations).toBe(STEPS);
      opt.dispose();
      tf.dispose(Object.values(vars));
    });
  }

  it('resumes bit for bit into fresh variables from getWeights / setWeights', async () => {
    for (const [setting, s] of Object.entries(ref.adamw)) {
      for (const k of [1, 3]) {
        const varsA = variables(`resumeA_${setting}`);
        const optA = adamw(optionsOf(s));
        for (let i = 0; i < k; i++) step(optA, varsA, s, i);
        // Copies: the moments are the optimiser's own and move on with the next step.
        const raw = await optA.getWeights();
        const saved: NamedTensor[] = raw.map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) }));
        raw.filter((w) => w.name === 'iter').forEach((w) => w.tensor.dispose());
        const savedValues = Object.fromEntries(KEYS.map((key) => [key, varsA[key]!.dataSync()]));
        const config = optA.getConfig();
        for (let i = k; i < STEPS; i++) step(optA, varsA, s, i);

        // A new optimiser from config, state renamed onto new variables holding the saved values.
        const varsB = variables(`resumeB_${setting}`, savedValues);
        const optB = AdamWOptimizer.fromConfig(
          AdamWOptimizer,
          JSON.parse(JSON.stringify(config)) as tf.serialization.ConfigDict,
        );
        if (!(optB instanceof AdamWOptimizer)) throw new Error('fromConfig built something else');
        const names = Object.fromEntries(KEYS.map((key) => [varsA[key]!.name, varsB[key]!.name]));
        await optB.setWeights(renameOptimizerWeights(saved, names));
        tf.dispose(saved.map((w) => w.tensor));
        for (let i = k; i < STEPS; i++) step(optB, varsB, s, i);

        const [a, b] = [await values(varsA), await values(varsB)];
        KEYS.forEach((key, j) => {
          expect(b[j], `${setting}, resumed after ${k}: ${key}`).toEqual(a[j]);
        });
        const [stateA, stateB] = [await stateOf(optA), await stateOf(optB)];
        expect([...stateB.values()]).toEqual([...stateA.values()]);
        expect(optB.iterations).toBe(STEPS);
        expect(optB.learningRate).toBe(optA.learningRate);
        expect(optB.weightDecay).toBe(optA.weightDecay);
        [optA, optB].forEach((o) => {
          o.dispose();
        });
        tf.dispose([...Object.values(varsA), ...Object.values(varsB)]);
      }
    }
  });

  it('takes its own getWeights back (the tensors it hands out are its own slots)', async () => {
    const s = ref.adamw['plain'] ?? Object.values(ref.adamw)[0]!;
    const [varsA, varsB] = [variables('selfA'), variables('selfB')];
    const [optA, optB] = [adamw(optionsOf(s)), adamw(optionsOf(s))];
    for (let i = 0; i < 2; i++) {
      step(optA, varsA, s, i);
      step(optB, varsB, s, i);
    }
    const own = await optA.getWeights();
    await optA.setWeights(own); // threw RangeError (maximum call stack) before
    own.filter((w) => w.name === 'iter').forEach((w) => w.tensor.dispose());
    for (let i = 2; i < STEPS; i++) {
      step(optA, varsA, s, i);
      step(optB, varsB, s, i);
    }
    const [a, b] = [await values(varsA), await values(varsB)];
    KEYS.forEach((key, j) => {
      expect(a[j], key).toEqual(b[j]);
    });
    optA.dispose();
    optB.dispose();
    tf.dispose([...Object.values(varsA), ...Object.values(varsB)]);
  });

  it('keeps a step count per variable: a variable without gradients is neither stepped nor decayed', async () => {
    const s = ref.adamw['frozen']!;
    const vars = variables('frozen_state');
    const opt = adamw(optionsOf(s));
    const kernelBefore = Array.from(vars['proj/kernel']!.dataSync());
    step(opt, vars, s, 0);
    expect(Array.from(vars['proj/kernel']!.dataSync())).toEqual(kernelBefore);
    step(opt, vars, s, 1);
    step(opt, vars, s, 2);
    const state = await stateOf(opt);
    const p = `frozen_state${counter}`;
    expect([...state.keys()]).toEqual([
      'iter',
      `${p}/proj/bias/m`,
      `${p}/proj/bias/v`,
      `${p}/proj/bias/step`,
      `${p}/temp/scale/m`,
      `${p}/temp/scale/v`,
      `${p}/temp/scale/step`,
      `${p}/proj/kernel/m`,
      `${p}/proj/kernel/v`,
      `${p}/proj/kernel/step`,
    ]);
    expect(state.get('iter')).toEqual([3]);
    expect(state.get(`${p}/proj/bias/step`)).toEqual([3]);
    expect(state.get(`${p}/proj/kernel/step`)).toEqual([1]);
    // First moment after one step from 0: (1 - beta1) g.
    expectClose(
      state.get(`${p}/proj/kernel/m`)!,
      ref.grads[2]!['proj/kernel']!.map((g) => 0.1 * g),
      tol,
    );
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('a first step through minimize is the closed form w (1 - lr wd) - lr g / (|g| + eps)', async () => {
    const lr = 0.1;
    const wd = 0.5;
    const eps = 1e-3;
    const w = variable(() => tf.tensor1d([1, -2, 3, 0.5]), `minimize${counter++}/kernel`);
    const b = variable(() => tf.tensor1d([1, 1]), `minimize${counter++}/bias`);
    const c = tf.tensor1d([0.5, -1, 2, 1e-3]);
    const opt = adamw({ learningRate: lr, weightDecay: wd, epsilon: eps, exclude: /bias/ });
    // Gradients c and (1, 1); minimize applies them through the NamedTensor[] path with varList.
    opt.minimize(() => tf.add(tf.sum(tf.mul(w, c)), tf.sum(b)), false, [w, b]);
    const g = [0.5, -1, 2, 1e-3];
    expectClose(
      await w.data(),
      [1, -2, 3, 0.5].map((x, i) => x * (1 - lr * wd) - (lr * g[i]!) / (Math.abs(g[i]!) + eps)),
      tol,
    );
    expectClose(await b.data(), [1 - lr / (1 + eps), 1 - lr / (1 + eps)], tol, 'undecayed bias');
    opt.dispose();
    tf.dispose([w, b, c]);
  });

  it('with weight decay 0 and epsilon 1e-7 agrees with tf.train.adam', async () => {
    const varsA = variables('tfadam');
    const varsB = variables('ours');
    const theirs = tf.train.adam(0.01, 0.9, 0.999, 1e-7);
    const ours = adamw({ learningRate: 0.01, weightDecay: 0, epsilon: 1e-7 });
    const plain = ref.adamw['plain']!;
    for (let i = 0; i < STEPS; i++) {
      tf.tidy(() => {
        theirs.applyGradients(
          Object.fromEntries(
            KEYS.map((k) => [varsA[k]!.name, tf.tensor(ref.grads[i]![k]!, ref.shapes[k])]),
          ) as unknown as Parameters<typeof theirs.applyGradients>[0],
        );
      });
      step(ours, varsB, plain, i);
    }
    const [a, b] = [await values(varsA), await values(varsB)];
    KEYS.forEach((k, j) => {
      expectClose(b[j]!, a[j]!, tol, k);
    });
    theirs.dispose();
    ours.dispose();
    tf.dispose([...Object.values(varsA), ...Object.values(varsB)]);
  });

  it('holds a constant number of tensors once its slots exist (getWeights included)', async () => {
    const s = ref.adamw['decay']!;
    const vars = variables('steady');
    const opt = adamw(optionsOf(s));
    step(opt, vars, s, 0);
    await stateOf(opt);
    const after1 = tf.memory().numTensors;
    for (let i = 1; i < STEPS; i++) {
      step(opt, vars, s, i);
      await stateOf(opt);
    }
    expect(tf.memory().numTensors).toBe(after1);
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('trains a tfjs-layers model through model.fit', async () => {
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [3], units: 1 })],
    });
    const opt = adamw({ learningRate: 0.05, weightDecay: 1e-4, excludeVectors: true });
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    const [x, y] = tf.tidy((): [tf.Tensor, tf.Tensor] => {
      const xs = tf.randomNormal([64, 3], 0, 1, 'float32', 1);
      return [xs, tf.matMul(xs, tf.tensor2d([[1], [-2], [0.5]]))];
    });
    const h = await model.fit(x, y, { epochs: 20, batchSize: 16, verbose: 0 }); // eslint-disable-line @typescript-eslint/no-unsafe-enum-assignment
    const losses = h.history.loss as number[];
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.1);
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    const [kernel, bias] = model.trainableWeights.map((w) => w.read() as tf.Variable);
    expect(opt.isExcluded(kernel!)).toBe(false);
    expect(opt.isExcluded(bias!)).toBe(true);
    tf.dispose([x, y]);
    model.dispose();
    opt.dispose();
  });

  if (backend === 'cpu') {
    it('round-trips its config, registers for serialisation, and defaults as PyTorch', () => {
      const opt = adamw({ learningRate: 1e-3 });
      expect(opt.getConfig()).toEqual({
        learningRate: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        weightDecay: 0.01,
        exclude: null,
        excludeFlags: null,
        excludeVectors: false,
      });
      const custom = adamw({
        learningRate: 2e-3,
        beta1: 0.8,
        beta2: 0.95,
        epsilon: 1e-6,
        weightDecay: 0.04,
        exclude: /Bias$/g,
        excludeVectors: true,
      });
      custom.setWeightDecay(0.3);
      custom.learningRate = 5e-4;
      const json = JSON.parse(JSON.stringify(custom.getConfig())) as tf.serialization.ConfigDict;
      const copy = AdamWOptimizer.fromConfig(AdamWOptimizer, json);
      if (!(copy instanceof AdamWOptimizer)) throw new Error('fromConfig built something else');
      expect(copy.getConfig()).toEqual(custom.getConfig());
      expect(copy.getConfig()).toMatchObject({ weightDecay: 0.3, learningRate: 5e-4 });
      // The global flag is dropped (test() would alternate); case stays sensitive.
      expect(copy.exclude?.flags).toBe('');
      const v = variable(() => tf.zeros([2, 2]), `cfg${counter++}/Bias`);
      const u = variable(() => tf.zeros([2, 2]), `cfg${counter++}/bias`);
      expect([copy.isExcluded(v), copy.isExcluded(v), copy.isExcluded(u)]).toEqual([
        true,
        true,
        false,
      ]);
      // A string pattern is case-insensitive, as LARS's.
      expect(adamw({ learningRate: 1, exclude: 'bias' }).isExcluded(v)).toBe(true);
      registerAdamWOptimizer();
      const registered = tf.serialization.SerializationMap.getMap().classNameMap[
        'tfjsContrastive>AdamW'
      ] as unknown[] | undefined;
      expect(registered?.[0]).toBe(AdamWOptimizer);
      tf.dispose([v, u]);
      [opt, custom, copy].forEach((o) => {
        o.dispose();
      });
    });

    it('restores tf.train.adam-style slots (no /step) at the iter count', async () => {
      const w = variable(() => tf.tensor1d([1, 2]), `imported${counter++}/kernel`);
      const opt = adamw({ learningRate: 0.1, weightDecay: 0 });
      const m = tf.tensor1d([0.1, 0.2]);
      const v = tf.tensor1d([0.01, 0.04]);
      const iter = tf.scalar(4, 'int32');
      await opt.setWeights([
        { name: 'iter', tensor: iter },
        { name: `${w.name}/m`, tensor: m },
        { name: `${w.name}/v`, tensor: v },
      ]);
      tf.dispose([m, v, iter]);
      tf.tidy(() => {
        opt.applyGradients({ [w.name]: tf.tensor1d([1, 1]) });
      });
      const state = await stateOf(opt);
      expect(state.get(`${w.name}/step`)).toEqual([5]);
      expect(state.get('iter')).toEqual([5]);
      // Step 5 by hand: m' = 0.9 m + 0.1, v' = 0.999 v + 0.001.
      const expected = [0.1, 0.2].map((m0, i) => {
        const m1 = 0.9 * m0 + 0.1;
        const v1 = 0.999 * [0.01, 0.04][i]! + 0.001;
        const wi = [1, 2][i]!;
        return (
          wi - (0.1 / (1 - 0.9 ** 5)) * (m1 / (Math.sqrt(v1) / Math.sqrt(1 - 0.999 ** 5) + 1e-8))
        );
      });
      expectClose(await w.data(), expected, tol);
      opt.dispose();
      w.dispose();
    });

    it('rejects bad options, values and state with ContrastiveErrors', async () => {
      expect(() => adamw({ learningRate: 0 })).toThrow(
        "adamw: argument 'options.learningRate' must be a finite number > 0",
      );
      expect(() => adamw(undefined as never)).toThrow(ContrastiveError);
      expect(() => adamw({ learningRate: 1, beta1: 1 })).toThrow("argument 'options.beta1'");
      expect(() => adamw({ learningRate: 1, beta2: -0.1 })).toThrow("argument 'options.beta2'");
      expect(() => adamw({ learningRate: 1, epsilon: 0 })).toThrow("argument 'options.epsilon'");
      expect(() => adamw({ learningRate: 1, weightDecay: -1 })).toThrow(
        "argument 'options.weightDecay' must be a finite number >= 0",
      );
      expect(() => adamw({ learningRate: 1, exclude: '(' })).toThrow("argument 'options.exclude'");
      expect(() => adamw({ learningRate: 1, exclude: 3 as never })).toThrow(ContrastiveError);
      expect(() => adamw({ learningRate: 1, excludeVectors: 'yes' as never })).toThrow(
        "argument 'options.excludeVectors'",
      );
      const opt = adamw({ learningRate: 1 });
      expect(() => {
        opt.setLearningRate(-1);
      }).toThrow("AdamWOptimizer.setLearningRate: argument 'learningRate'");
      expect(() => {
        opt.weightDecay = Number.NaN;
      }).toThrow("AdamWOptimizer.setWeightDecay: argument 'weightDecay'");
      expect([opt.learningRate, opt.weightDecay]).toEqual([1, 0.01]);

      const w = variable(() => tf.zeros([2, 3]), `errors${counter++}/kernel`);
      expect(() => {
        tf.tidy(() => {
          opt.applyGradients({ [w.name]: tf.zeros([3, 2]) });
        });
      }).toThrow(
        `argument 'variableGradients['${w.name}']' must be a gradient of the variable's shape [2, 3]`,
      );
      const m = tf.zeros([2, 3]);
      await expect(opt.setWeights([{ name: `${w.name}/momentum`, tensor: m }])).rejects.toThrow(
        "'iter' or a name ending in '/m', '/v' or '/step'",
      );
      await expect(opt.setWeights([{ name: `${w.name}/m`, tensor: m }])).rejects.toThrow(
        `must be both '${w.name}/m' and '${w.name}/v'`,
      );
      await expect(
        opt.setWeights([
          { name: `${w.name}/m`, tensor: m },
          { name: `${w.name}/v`, tensor: m },
        ]),
      ).rejects.toThrow(`'${w.name}/step' or 'iter'`);
      const bad = tf.scalar(-1, 'int32');
      await expect(opt.setWeights([{ name: 'iter', tensor: bad }])).rejects.toThrow(
        "argument 'weightValues[0] ('iter')' must be an integer >= 0",
      );
      // A slot restored under the variable's name but of another shape is caught at the step.
      const small = tf.zeros([3]);
      const zero = tf.scalar(0, 'int32');
      await opt.setWeights([
        { name: `${w.name}/m`, tensor: small },
        { name: `${w.name}/v`, tensor: small },
        { name: `${w.name}/step`, tensor: zero },
      ]);
      expect(() => {
        tf.tidy(() => {
          opt.applyGradients({ [w.name]: tf.zeros([2, 3]) });
        });
      }).toThrow(`the restored slot '${w.name}/m'`);
      expect(() => renameOptimizerWeights([{ name: 'a/m', tensor: m }], { b: 'c' })).toThrow(
        "renameOptimizerWeights: argument 'rename['a']'",
      );
      expect(
        renameOptimizerWeights(
          [
            { name: 'iter', tensor: m },
            { name: 'x/y/m', tensor: m },
          ],
          (n) => `new/${n}`,
        ).map((e) => e.name),
      ).toEqual(['iter', 'new/x/y/m']);
      opt.dispose();
      tf.dispose([w, m, bad, small, zero]);
    });
  }
});
