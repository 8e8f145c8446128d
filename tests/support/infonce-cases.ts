/**
 * Runs one case of tests/fixtures/infonce-family.json (scripts/fixtures/infonce_family.py) on the
 * active backend and returns plain numbers, so that the same code serves the Node tests and the
 * browser page (no test-runner code here: tests/support/check-case.ts compares).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  cmcLoss,
  cpcLoss,
  infoNce,
  invaSpreadLoss,
  maskedInfoNce,
  mocoV3Loss,
  ntXentLoss,
  supConLoss,
} from '../../src/index.js';

export interface Input {
  shape: number[];
  data: number[];
  dtype?: 'int32' | 'bool';
}

export interface Case {
  name: string;
  fn: string;
  options: Record<string, unknown>;
  inputs: Record<string, Input>;
  loss: number;
  per_sample?: number[];
  grads: Record<string, number[]>;
}

export interface CaseResult {
  /** The ContrastiveError's message, when the library refused the case. */
  refused?: string;
  loss?: number;
  perSample?: number[];
  grads: Record<string, number[]>;
  /** Live tensors after the case minus before. */
  leaked: number;
}

type Args = Record<string, tf.Tensor>;

function indexed(args: Args, prefix: string): tf.Tensor2D[] | undefined {
  const keys = Object.keys(args)
    .filter((k) => k.startsWith(`${prefix}.`))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  return keys.length === 0 ? undefined : keys.map((k) => args[k] as tf.Tensor2D);
}

// Calls the library function a fixture case names, with its inputs and options.
function call(c: Case, a: Args, reduction?: 'none'): tf.Tensor {
  const o = { ...c.options, ...(reduction === undefined ? {} : { reduction }) };
  const t2 = (k: string): tf.Tensor2D => a[k] as tf.Tensor2D;
  switch (c.fn) {
    case 'infoNce': {
      const negatives = a.negatives !== undefined ? t2('negatives') : indexed(a, 'negatives');
      return infoNce(t2('query'), t2('positiveKey'), { ...o, ...(negatives ? { negatives } : {}) });
    }
    case 'maskedInfoNce':
      return maskedInfoNce(t2('logits'), t2('positiveMask'), {
        ...o,
        ...(a.validMask ? { validMask: a.validMask } : {}),
      });
    case 'ntXentLoss':
      return ntXentLoss(t2('z1'), t2('z2'), o);
    case 'supConLoss':
      return supConLoss(t2('embeddings'), a.labels as tf.Tensor1D, o);
    case 'mocoV3Loss':
      return mocoV3Loss(t2('q'), t2('k'), o);
    case 'invaSpreadLoss':
      return invaSpreadLoss(t2('z1'), t2('z2'), o);
    case 'cmcLoss': {
      const negativesPerView = indexed(a, 'negativesPerView');
      const positivesPerView = indexed(a, 'positivesPerView');
      return cmcLoss(indexed(a, 'views') ?? [], {
        ...o,
        ...(negativesPerView ? { negativesPerView } : {}),
        ...(positivesPerView ? { positivesPerView } : {}),
      });
    }
    case 'cpcLoss':
      return cpcLoss(a.predictions as tf.Tensor3D, a.targets as tf.Tensor3D, o);
    default:
      throw new Error(`unknown fixture function ${c.fn}`);
  }
}

// Explicit negatives and positives are constants (queue / bank entries): the reference detaches
// them too.
export const isConstantInput = (k: string): boolean =>
  k.startsWith('negatives') || k.startsWith('positivesPerView');

/**
 * Runs a case on the active backend: loss, per-sample losses and gradients, or the refusal.
 * Reads back asynchronously: webgpu's synchronous read-back is not supported.
 */
export async function runCase(c: Case): Promise<CaseResult> {
  const before = tf.memory().numTensors;
  const args: Args = {};
  for (const [k, v] of Object.entries(c.inputs)) {
    args[k] = tf.tensor(v.data, v.shape, v.dtype ?? 'float32');
  }
  const result: CaseResult = { grads: {}, leaked: 0 };
  try {
    const loss = call(c, args);
    result.loss = loss.shape.length === 0 ? ((await loss.data())[0] as number) : Number.NaN;
    loss.dispose();
    if (c.per_sample !== undefined) {
      const per = call(c, args, 'none');
      result.perSample = Array.from(await per.data());
      per.dispose();
    }
    const names = Object.keys(c.grads).filter((k) => !isConstantInput(k));
    const grads = tf.grads((...ts: tf.Tensor[]) => {
      const swapped: Args = { ...args };
      names.forEach((k, i) => (swapped[k] = ts[i] as tf.Tensor));
      return call(c, swapped) as tf.Scalar;
    })(names.map((k) => args[k] as tf.Tensor));
    for (const [i, k] of names.entries()) {
      result.grads[k] = Array.from(await (grads[i] as tf.Tensor).data());
    }
    tf.dispose(grads);
  } catch (e) {
    if (!(e instanceof ContrastiveError)) throw e;
    result.refused = e.message;
  } finally {
    tf.dispose(Object.values(args));
  }
  result.leaked = tf.memory().numTensors - before;
  return result;
}

const IN_BATCH = new Set(['ntXentLoss', 'mocoV3Loss', 'supConLoss', 'invaSpreadLoss']);

/**
 * In-batch losses without any negative (N = 1): the library refuses them, since the reference's
 * 0 is degenerate and a silent 0 would hide a bug in the caller.
 */
export function isDegenerate(c: Case): boolean {
  const first = Object.values(c.inputs)[0] as Input;
  const n = first.shape[0] as number;
  if (IN_BATCH.has(c.fn)) return n < 2;
  const explicit = c.inputs.negatives !== undefined || c.inputs['negatives.0'] !== undefined;
  return c.fn === 'infoNce' && !explicit && n < 2;
}
