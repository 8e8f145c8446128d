/**
 * The training loop of every preset: batches from any data source, epochs / steps / a time
 * budget, tfjs-layers-style callbacks, cancellation, checkpoints and a progress line in Node.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  checkBoolean,
  checkNumber,
  describeValue,
  type SeededRandom,
} from '../core/index.js';
import type {
  AsyncIteratorLike,
  Batch,
  FitCallbacks,
  FitData,
  FitLogs,
  FitOptions,
  FitResult,
  TrainStepResult,
} from './types.js';
import { isOptimizer } from './schedule.js';

/** What `fit` needs of the preset. */
export interface Trainable {
  readonly name: string;
  readonly step: number;
  readonly skippedSteps: number;
  stopTraining: boolean;
  trainStep(batch: Batch, optimizer?: tf.Optimizer): Promise<TrainStepResult>;
  save(target?: string): Promise<Uint8Array>;
}

/** Hooks into the preset's internals. */
export interface FitHooks {
  readonly dataRng: SeededRandom;
  /**
   * Tells the preset the run's length for its schedules, and the length of an epoch when the
   * data's length is known.
   */
  setRun(
    steps: number | undefined,
    seconds: number | undefined,
    stepsPerEpoch: number | undefined,
  ): void;
}

/** One batch and whether `fit` made (and must free) its tensors. */
interface OwnedBatch {
  readonly batch: Batch;
  readonly owned: tf.Tensor[];
}

/** A data source: batches per epoch, and how many when known. */
interface Source {
  readonly batchesPerEpoch: number | undefined;
  epoch(): AsyncGenerator<OwnedBatch> | Generator<OwnedBatch>;
}

/** Seconds on a monotonic clock: the one `fit`'s budget and the presets' schedules share. */
export const now = (): number =>
  typeof performance !== 'undefined' ? performance.now() / 1000 : Date.now() / 1000;

/** The fit loop. */
export async function runFit(
  method: Trainable,
  data: FitData,
  options: FitOptions,
  hooks: FitHooks,
): Promise<FitResult> {
  const caller = `${method.name}.fit`;
  const o = checkOptions(caller, options);
  const source = sourceOf(caller, data, o.batchSize, o.shuffle, hooks.dataRng);
  const limitedByData =
    o.epochs !== undefined || (o.steps === undefined && o.seconds === undefined);
  const epochs = o.epochs ?? (limitedByData ? 1 : Number.POSITIVE_INFINITY);
  const perEpoch = source.batchesPerEpoch;
  let scheduleSteps = o.steps;
  if (scheduleSteps === undefined && perEpoch !== undefined && Number.isFinite(epochs)) {
    scheduleSteps = perEpoch * epochs;
  }
  hooks.setRun(o.seconds === undefined ? scheduleSteps : undefined, o.seconds, perEpoch);
  const callbacks: FitCallbacks[] = Array.isArray(o.callbacks)
    ? [...(o.callbacks as FitCallbacks[])]
    : o.callbacks === undefined
      ? []
      : [o.callbacks as FitCallbacks];
  const progress = o.progress ? progressLine(method.name, scheduleSteps, o.seconds) : undefined;
  const checkpoint =
    typeof o.checkpoint === 'string'
      ? { target: o.checkpoint, everySteps: undefined }
      : o.checkpoint;

  const started = now();
  const losses: number[] = [];
  const skippedAtStart = method.skippedSteps;
  let stoppedBy: FitResult['stoppedBy'] = limitedByData ? 'epochs' : 'data';
  const logs = (loss: number): FitLogs => ({
    step: method.step,
    loss,
    seconds: now() - started,
    skippedSteps: method.skippedSteps,
  });
  const mean = (xs: readonly number[]): number =>
    xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
  method.stopTraining = false;
  for (const cb of callbacks) await cb.onTrainBegin?.(logs(Number.NaN));
  let applied = 0;
  let warned = false;
  const warn = o.onWarning ?? ((message: string): void => console.warn(message));
  try {
    outer: for (let epoch = 0; epoch < epochs; epoch++) {
      for (const cb of callbacks) await cb.onEpochBegin?.(epoch, logs(Number.NaN));
      const epochLosses: number[] = [];
      let any = false;
      for await (const { batch, owned } of source.epoch()) {
        any = true;
        let result: TrainStepResult;
        try {
          result = await method.trainStep(batch, o.optimizer);
        } finally {
          tf.dispose(owned);
        }
        if (!result.skipped) {
          applied++;
          losses.push(result.loss);
          epochLosses.push(result.loss);
        }
        progress?.update(applied, result);
        if (result.collapse !== undefined && !warned) {
          warned = true;
          progress?.clear();
          warn(`${caller}: ${result.collapse}`);
        }
        let stop = false;
        for (const cb of callbacks) {
          if ((await cb.onBatchEnd?.(method.step, result)) === false) stop = true;
        }
        if (
          checkpoint?.everySteps !== undefined &&
          !result.skipped &&
          method.step % checkpoint.everySteps === 0
        ) {
          await method.save(checkpoint.target);
        }
        if (stop || stopRequested(method)) {
          stoppedBy = 'callback';
          break outer;
        }
        if (o.signal?.aborted === true) {
          stoppedBy = 'signal';
          break outer;
        }
        if (o.steps !== undefined && applied >= o.steps) {
          stoppedBy = 'steps';
          break outer;
        }
        if (o.seconds !== undefined && now() - started >= o.seconds) {
          stoppedBy = 'seconds';
          break outer;
        }
      }
      for (const cb of callbacks) await cb.onEpochEnd?.(epoch, logs(mean(epochLosses)));
      if (!any) {
        stoppedBy = 'data';
        break;
      }
    }
  } finally {
    hooks.setRun(undefined, undefined, undefined);
    progress?.end();
  }
  if (checkpoint !== undefined) await method.save(checkpoint.target);
  for (const cb of callbacks) await cb.onTrainEnd?.(logs(mean(losses)));
  return {
    losses,
    steps: applied,
    skippedSteps: method.skippedSteps - skippedAtStart,
    seconds: now() - started,
    stoppedBy,
  };
}

interface CheckedOptions extends FitOptions {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly progress: boolean;
}

/** Read through a call: a callback may set it while TypeScript narrows it to `false`. */
function stopRequested(method: { stopTraining: boolean }): boolean {
  return method.stopTraining;
}

function checkOptions(caller: string, options: FitOptions): CheckedOptions {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new ContrastiveError({
      caller,
      argument: 'options',
      expected: 'an options object',
      received: describeValue(options),
    });
  }
  const batchSize = options.batchSize ?? 256;
  checkNumber(caller, 'options.batchSize', batchSize, { integer: true, min: 1 });
  if (options.epochs !== undefined)
    checkNumber(caller, 'options.epochs', options.epochs, { integer: true, min: 1 });
  if (options.steps !== undefined)
    checkNumber(caller, 'options.steps', options.steps, { integer: true, min: 1 });
  if (options.seconds !== undefined)
    checkNumber(caller, 'options.seconds', options.seconds, { greaterThan: 0 });
  const shuffle = options.shuffle ?? true;
  checkBoolean(caller, 'options.shuffle', shuffle);
  if (options.onWarning !== undefined && typeof options.onWarning !== 'function') {
    throw new ContrastiveError({
      caller,
      argument: 'options.onWarning',
      expected: 'a function (message: string) => void',
      received: describeValue(options.onWarning),
    });
  }
  const inNode =
    typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions
      ?.node === 'string';
  const progress = options.progress ?? inNode;
  checkBoolean(caller, 'options.progress', progress);
  if (options.optimizer !== undefined && !isOptimizer(options.optimizer)) {
    throw new ContrastiveError({
      caller,
      argument: 'options.optimizer',
      expected: 'a tf.Optimizer',
      received: describeValue(options.optimizer),
    });
  }
  const cp = options.checkpoint;
  if (cp !== undefined && typeof cp !== 'string') {
    if (typeof cp !== 'object' || typeof cp.target !== 'string') {
      throw new ContrastiveError({
        caller,
        argument: 'options.checkpoint',
        expected: 'a target string or { target, everySteps? }',
        received: describeValue(cp),
      });
    }
    if (cp.everySteps !== undefined)
      checkNumber(caller, 'options.checkpoint.everySteps', cp.everySteps, {
        integer: true,
        min: 1,
      });
  }
  return { ...options, batchSize, shuffle, progress };
}

function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

/** A batch from an element of an iterable or Dataset: a tensor or `{ images, ... }`. */
function toBatch(caller: string, element: unknown): Batch {
  if (isTensor(element)) return { images: element as tf.Tensor4D };
  const e = element as Partial<Batch> | null;
  if (e !== null && typeof e === 'object' && isTensor(e.images)) return e as Batch;
  // A tfjs-data Dataset of { xs } (tfjs-layers' convention).
  const xs = (element as { xs?: unknown } | null)?.xs;
  if (isTensor(xs)) return { images: xs as tf.Tensor4D };
  throw new ContrastiveError({
    caller,
    argument: 'data',
    expected: 'batches as [B, H, W, C] tensors or { images, indices?, labels? }',
    received: `an element ${describeValue(element)}`,
  });
}

function sourceOf(
  caller: string,
  data: FitData,
  batchSize: number,
  shuffle: boolean,
  rng: SeededRandom,
): Source {
  if (isTensor(data)) {
    if (data.rank !== 4 || data.dtype !== 'float32') {
      throw new ContrastiveError({
        caller,
        argument: 'data',
        expected: 'a float32 tensor of images [N, H, W, C]',
        received: describeValue(data),
      });
    }
    const images = data;
    const n = images.shape[0];
    return {
      batchesPerEpoch: Math.ceil(n / batchSize),
      *epoch() {
        const order = shuffle ? rng.permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
        for (let start = 0; start < n; start += batchSize) {
          const idx = order.slice(start, Math.min(n, start + batchSize));
          const batch = tf.tidy(() => tf.gather(images, tf.tensor1d(idx, 'int32')));
          yield { batch: { images: batch, indices: idx }, owned: [batch] };
        }
      },
    };
  }
  if (Array.isArray(data)) {
    const list = data as readonly unknown[];
    list.forEach((t, i) => {
      if (!isTensor(t) || t.rank !== 4) {
        throw new ContrastiveError({
          caller,
          argument: `data[${i}]`,
          expected: 'a batch of images [B, H, W, C]',
          received: describeValue(t),
        });
      }
    });
    return {
      batchesPerEpoch: list.length,
      *epoch() {
        for (const t of list) yield { batch: { images: t as tf.Tensor4D }, owned: [] };
      },
    };
  }
  const d = data as {
    iterator?: () => Promise<AsyncIteratorLike>;
    [Symbol.asyncIterator]?: () => AsyncIterator<unknown>;
    [Symbol.iterator]?: () => Iterator<unknown>;
  };
  if (typeof d.iterator === 'function') {
    // A tfjs-data Dataset: a fresh iterator per epoch; its elements are ours to free.
    const dataset = d as { iterator: () => Promise<AsyncIteratorLike> };
    return {
      batchesPerEpoch: undefined,
      async *epoch() {
        const it = await dataset.iterator();
        for (;;) {
          const { done, value } = await it.next();
          if (done) return;
          const batch = toBatch(caller, value);
          yield { batch, owned: tensorsOf(value) };
        }
      },
    };
  }
  if (typeof d[Symbol.asyncIterator] === 'function' || typeof d[Symbol.iterator] === 'function') {
    const iterable = data as AsyncIterable<unknown> | Iterable<unknown>;
    return {
      batchesPerEpoch: undefined,
      async *epoch() {
        for await (const value of iterable) yield { batch: toBatch(caller, value), owned: [] };
      },
    };
  }
  throw new ContrastiveError({
    caller,
    argument: 'data',
    expected:
      'a [N, H, W, C] tensor, an array of batches, a tfjs-data Dataset or an (async) iterable of batches',
    received: describeValue(data),
  });
}

function tensorsOf(value: unknown): tf.Tensor[] {
  if (isTensor(value)) return [value];
  if (value !== null && typeof value === 'object') {
    return Object.values(value as Record<string, unknown>).filter(isTensor);
  }
  return [];
}

/** A progress line on stderr in Node: steps, loss, images/s and time left. */
function progressLine(
  name: string,
  totalSteps: number | undefined,
  seconds: number | undefined,
): { update(applied: number, r: TrainStepResult): void; clear(): void; end(): void } | undefined {
  const proc = (
    globalThis as {
      process?: { stderr?: { write(s: string): boolean; isTTY?: boolean } };
    }
  ).process;
  const out = proc?.stderr;
  if (out === undefined) return undefined;
  const started = now();
  let last = 0;
  let lastLength = 0;
  const tty = out.isTTY === true;
  const every = tty ? 0.5 : 10;
  return {
    update(applied, r) {
      const t = now();
      if (t - last < every) return;
      last = t;
      const elapsed = t - started;
      let left = '';
      if (seconds !== undefined) left = `, ${Math.max(0, seconds - elapsed).toFixed(0)} s left`;
      else if (totalSteps !== undefined && applied > 0)
        left = `, ${((elapsed / applied) * (totalSteps - applied)).toFixed(0)} s left`;
      const of = totalSteps === undefined ? '' : `/${totalSteps}`;
      const line =
        `${name}: step ${applied}${of}, loss ${r.loss.toFixed(4)}, ` +
        `${r.metrics.imagesPerSecond.toFixed(0)} images/s${left}`;
      if (tty) {
        out.write(`\r${line.padEnd(lastLength)}`);
        lastLength = line.length;
      } else out.write(`${line}\n`);
    },
    clear() {
      // Ends the current line, so that a warning starts on its own.
      if (tty && lastLength > 0) out.write('\n');
      lastLength = 0;
    },
    end() {
      if (tty && lastLength > 0) out.write('\n');
    },
  };
}
