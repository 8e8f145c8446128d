/**
 * The presets' state rules, checked from outside the step: a target (momentum) network moves only
 * by its EMA rule, target = m x target + (1 - m) x online (online after the optimiser step), for
 * every parameter including frozen ones, and never by gradients; MoCo's and SimCLR v2's queue
 * holds the newest keys, the key networks' L2-normalised outputs on the step's own views, oldest
 * first after older keys; a method without a target (SimCLR, SimSiam) has none to move.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { l2Normalize } from '../../src/core/index.js';
import { smallConvNet } from '../../src/layers/index.js';
import { byol, moco, mocoV3, simclrV2, type SslMethod } from '../../src/methods/index.js';
import { namedWeights } from '../../src/methods/weights.js';
import type { MomentumQueue } from '../../src/state/index.js';
import { describeBackends, expectClose } from '../support/backends.js';
import { randomImages } from '../support/layers.js';

const SIDE = 8;
const BATCH = 6;
const encoders: tfl.LayersModel[] = [];
const encoder = (): tfl.LayersModel => {
  const e = smallConvNet({ inputShape: [SIDE, SIDE, 1], widths: [4, 8], seed: 5 });
  encoders.push(e);
  return e;
};
const disposeAll = (method: SslMethod): void => {
  method.dispose();
  for (const e of encoders.splice(0)) e.dispose();
};
const networksOf = (m: SslMethod): Record<string, tfl.LayersModel> =>
  (m as unknown as { networks(): Record<string, tfl.LayersModel> }).networks();

/** Parameters (not batch-norm buffers) of a network, by position, as arrays. */
function parameters(model: tfl.LayersModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const { name, weight, buffer } of namedWeights(model as never)) {
    if (!buffer) out.set(name, weight.read().dataSync() as Float32Array);
  }
  return out;
}

interface Case {
  build: () => SslMethod;
  /** Pairs [target, online] of network names. */
  pairs: [string, string][];
  /** The queue and how the step's keys are computed from its views by the key networks. */
  queue?: {
    of: (m: SslMethod) => MomentumQueue;
    keys: (nets: Record<string, tfl.LayersModel>, views: tf.Tensor4D[]) => tf.Tensor2D;
  };
}

const train = (model: tfl.LayersModel, x: tf.Tensor): tf.Tensor2D =>
  model.apply(x, { training: true }) as tf.Tensor2D;

const CASES: Record<string, Case> = {
  moco: {
    // One batch-norm group: no key shuffle, so the keys can be recomputed here.
    build: () =>
      moco({ encoder: encoder(), projectionDim: 8, queueSize: 16, batchNormGroups: 1, seed: 2 }),
    pairs: [
      ['keyEncoder', 'encoder'],
      ['keyHead', 'head'],
    ],
    queue: {
      of: (m) => (m as unknown as { queue: MomentumQueue }).queue,
      keys: (nets, views) =>
        l2Normalize(train(nets['keyHead']!, train(nets['keyEncoder']!, views[1]!))),
    },
  },
  simclrV2Memory: {
    build: () =>
      simclrV2({ encoder: encoder(), projectionDim: 8, momentum: 0.9, queueSize: 16, seed: 2 }),
    pairs: [
      ['memoryEncoder', 'encoder'],
      ['memoryProjector', 'projector'],
    ],
    queue: {
      of: (m) => (m as unknown as { memory: { queue: MomentumQueue } }).memory.queue,
      keys: (nets, views) =>
        l2Normalize(
          train(nets['memoryProjector']!, train(nets['memoryEncoder']!, tf.concat(views, 0))),
        ),
    },
  },
  byol: {
    build: () => byol({ encoder: encoder(), projectionDim: 8, hiddenDim: 16, seed: 2 }),
    pairs: [
      ['targetEncoder', 'encoder'],
      ['targetProjector', 'projector'],
    ],
  },
  mocoV3: {
    build: () => mocoV3({ encoder: encoder(), projectionDim: 8, hiddenDim: 16, seed: 2 }),
    pairs: [
      ['momentumEncoder', 'encoder'],
      ['momentumProjector', 'projector'],
    ],
  },
};

describeBackends('preset state rules', ({ tol }) => {
  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: the target moves only by EMA of the updated online network`, async () => {
      const method = c.build();
      const nets = networksOf(method);
      for (let s = 0; s < 3; s++) {
        const images = randomImages([BATCH, SIDE, SIDE, 1], 10 + s);
        const targetsBefore = c.pairs.map(([t]) => parameters(nets[t]!));
        const result = await method.trainStep({ images });
        expect(result.skipped).toBe(false);
        const m = result.metrics.momentum;
        expect(m).toBeGreaterThan(0);
        expect(m).toBeLessThan(1);
        c.pairs.forEach(([t, o], i) => {
          const target = parameters(nets[t]!);
          const online = parameters(nets[o]!);
          expect([...target.keys()]).toEqual([...online.keys()]);
          for (const [w, after] of target) {
            const before = targetsBefore[i]!.get(w)!;
            const now = online.get(w)!;
            const expected = Array.from(before, (x, j) => m! * x + (1 - m!) * now[j]!);
            expectClose(after, expected, tol, `${t}.${w}`);
          }
        });
        images.dispose();
      }
      disposeAll(method);
    });

    if (c.queue !== undefined) {
      const q = c.queue;
      it(`${name}: the queue holds the newest keys, oldest first`, async () => {
        const method = c.build();
        const queue = q.of(method);
        const nets = networksOf(method);
        const added: number[][] = [];
        for (let s = 0; s < 4; s++) {
          const images = randomImages([BATCH, SIDE, SIDE, 1], 20 + s);
          const views = method.makeViews(images);
          // The keys the step must enqueue: the key networks before the step, on the same views.
          const keys = tf.tidy(() => q.keys(nets, views));
          const rows = await keys.array();
          keys.dispose();
          const countBefore = queue.count;
          const result = await method.trainStep({ images, views });
          expect(result.skipped).toBe(false);
          added.push(...rows);
          expect(queue.count).toBe(Math.min(queue.size, countBefore + rows.length));
          const all = queue.readConcatenated();
          const stored = await all.array();
          all.dispose();
          const newest = added.slice(-queue.size);
          expectClose(stored.slice(queue.size - newest.length).flat(), newest.flat(), tol * 10);
          tf.dispose([images, ...views]);
        }
        // 4 steps of 6 or 12 keys fill a 16-key queue: the random initial keys are gone.
        expect(queue.count).toBe(queue.size);
        disposeAll(method);
      });
    }
  }
});
