/**
 * Runs one case of tests/fixtures/negative-free.json (scripts/fixtures/negative_free.py) on the
 * active backend and returns plain numbers, for the Node tests and the browser page alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  Center,
  byolLoss,
  dinoLoss,
  negativeCosineSimilarity,
  simsiamLoss,
  sinkhorn,
  swavLoss,
  symmetricByolLoss,
} from '../../src/index.js';

export interface NegativeFreeCase {
  name: string;
  fn: string;
  options: Record<string, unknown>;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  loss?: number;
  grads?: Record<string, number[]>;
  codes?: number[];
  'center_after_momentum_0.9'?: number[];
}

export interface NegativeFreeResult {
  loss?: number;
  codes?: number[];
  center?: number[];
  grads: Record<string, number[]>;
  leaked: number;
}

type Args = Record<string, tf.Tensor>;

function list(a: Args, prefix: string): tf.Tensor2D[] {
  return Object.keys(a)
    .filter((k) => k.startsWith(`${prefix}.`))
    .sort((x, y) => Number(x.split('.')[1]) - Number(y.split('.')[1]))
    .map((k) => a[k] as tf.Tensor2D);
}

function call(c: NegativeFreeCase, a: Args): tf.Tensor {
  const t = (k: string): tf.Tensor2D => a[k] as tf.Tensor2D;
  switch (c.fn) {
    case 'swavLoss': {
      const queue = list(a, 'queue');
      return swavLoss(list(a, 'scores'), {
        ...c.options,
        ...(queue.length > 0 ? { queueScoresPerCrop: queue } : {}),
      });
    }
    case 'dinoLoss':
      return dinoLoss(list(a, 'student'), list(a, 'teacher'), a.center as tf.Tensor, c.options);
    case 'byolLoss':
      return byolLoss(t('p'), t('z'));
    case 'symmetricByolLoss':
      return symmetricByolLoss(t('p1'), t('p2'), t('z1'), t('z2'));
    case 'simsiamLoss':
      return simsiamLoss(t('p1'), t('p2'), t('z1'), t('z2'));
    case 'negativeCosineSimilarity':
      return negativeCosineSimilarity(t('a'), t('b'));
    default:
      throw new Error(`unknown function ${c.fn}`);
  }
}

/**
 * The inputs whose gradient is compared: those with a non-zero reference gradient (an input the
 * loss does not use, such as DINO's only global crop as a student view, has no path in tfjs).
 */
export function differentiated(c: NegativeFreeCase): string[] {
  return Object.keys(c.grads ?? {}).filter((k) => c.grads![k]!.some((v) => v !== 0));
}

/** Runs a case on the active backend (async read-back, for webgpu). */
export async function runNegativeFreeCase(c: NegativeFreeCase): Promise<NegativeFreeResult> {
  const before = tf.memory().numTensors;
  const args: Args = {};
  for (const [k, v] of Object.entries(c.inputs)) args[k] = tf.tensor(v.data, v.shape);
  const result: NegativeFreeResult = { grads: {}, leaked: 0 };
  try {
    if (c.fn === 'sinkhorn') {
      const codes = sinkhorn(args.scores as tf.Tensor2D, c.options);
      result.codes = Array.from(await codes.data());
      codes.dispose();
    } else {
      const loss = call(c, args);
      result.loss = (await loss.data())[0];
      loss.dispose();
      const names = differentiated(c);
      const grads = tf.grads((...ts: tf.Tensor[]) => {
        const swapped: Args = { ...args };
        names.forEach((k, i) => (swapped[k] = ts[i] as tf.Tensor));
        return call(c, swapped) as tf.Scalar;
      })(names.map((k) => args[k] as tf.Tensor));
      for (const [i, k] of names.entries()) result.grads[k] = Array.from(await grads[i]!.data());
      tf.dispose(grads);
      if (c['center_after_momentum_0.9'] !== undefined) {
        const center = Center.fromState({
          config: { momentum: 0.9, dim: c.inputs.center!.data.length },
          tensors: { value: args.center! },
        });
        center.update(list(args, 'teacher'));
        result.center = Array.from(await center.value.data());
        center.dispose();
      }
    }
  } finally {
    tf.dispose(Object.values(args));
  }
  result.leaked = tf.memory().numTensors - before;
  return result;
}
