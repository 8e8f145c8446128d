import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  ContrastiveError,
  checkNumber,
  l2Normalize,
  type ComponentState,
  type JsonValue,
} from '../core/index.js';
import { simclrV2Projector } from '../layers/index.js';
import { infoNce } from '../losses/index.js';
import { MomentumQueue, cloneAsMomentumEncoder, emaUpdate } from '../state/index.js';
import { outputWidth, type LossOutput, type StatefulPart, type StepContext } from './method.js';
import { restoredQueue } from './parts.js';
import { SimCLR, type SimclrOptions } from './simclr.js';

/** Options of {@link simclrV2}. */
export interface SimclrV2Options extends SimclrOptions {
  /**
   * Turns on SimCLR v2's memory network (Sec. 2 of Chen et al. 2020b, after MoCo): a momentum
   * copy of encoder and projector with this EMA momentum provides each view's positive key, and
   * a queue of its earlier keys the negatives. Default: off (plain NT-Xent, which the paper
   * found within about 1% of it).
   */
  readonly momentum?: number;
  /** Queue length of the memory network. Default `4096`. */
  readonly queueSize?: number;
}

/**
 * SimCLR v2 (Chen et al., NeurIPS 2020, "Big Self-Supervised Models are Strong Semi-Supervised
 * Learners"): SimCLR with a deeper projection head, 3 layers with batch norm on each, bias and
 * ReLU on all but the last (`simclrV2Projector`, hidden = F, out 128), NT-Xent as in
 * {@link simclr}; optionally the memory network (`momentum`, `queueSize`): then each view's
 * query is scored against the momentum network's key of the other view and the queued keys
 * (InfoNCE, both directions averaged), and both views' keys are enqueued.
 *
 * Defaults as {@link simclr} (temperature 0.1, LARS lr 1.0, weight decay 1e-6, 10% warm-up,
 * cosine decay; under 96 px AdamW lr 4e-3 and the small-image recipe). Fine-tuning from the projector's middle
 * layer, which the paper recommends, is left to the caller: `method.projector.layers` holds it.
 *
 * @param options - the encoder and {@link SimclrV2Options}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="images" -->
 * ```ts
 * import { simclrV2 } from 'tfjs-contrastive/methods';
 * import { smallResNet } from 'tfjs-contrastive/layers';
 *
 * const method = simclrV2({ encoder: smallResNet({ inputShape: [32, 32, 3], seed: 1 }), momentum: 0.99 });
 * await method.fit(images, { epochs: 2 }); // images: [N, 32, 32, 3] in [0, 1]
 * ```
 */
export function simclrV2(options: SimclrV2Options): SimCLRv2 {
  return new SimCLRv2(options);
}

/**
 * The SimCLR v2 preset; build it with {@link simclrV2}.
 *
 * @example
 * <!-- snippet setup="images" -->
 * ```ts
 * import { SimCLRv2, simclrV2 } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const encoder = smallConvNet({ inputShape: [32, 32, 3], widths: [8, 16], seed: 1 });
 * const method: SimCLRv2 = simclrV2({ encoder, momentum: 0.99 }); // with a memory network and queue
 * const views = method.makeViews(images, 0); // the two views a step trains on, to look at
 * await method.trainStep({ images }); // images: [B, 32, 32, 3] in [0, 1]
 * method.dispose();
 * ```
 */
export class SimCLRv2 extends SimCLR {
  override readonly name: string = 'simclrV2';
  /** The memory network's momentum, when it is on. */
  readonly momentum: number | undefined;
  private readonly memory:
    { encoder: tfl.LayersModel; projector: tfl.Sequential; queue: MomentumQueue } | undefined;

  /**
   * Builds the preset (prefer {@link simclrV2}).
   *
   * @param options - see {@link simclrV2}.
   */
  constructor(options: SimclrV2Options) {
    const caller = 'simclrV2';
    super(options, caller, simclrV2Projector);
    this.momentum = options.momentum;
    if (options.momentum !== undefined) {
      checkNumber(caller, 'options.momentum', options.momentum, { min: 0, max: 1 });
      const size = options.queueSize ?? 4096;
      checkNumber(caller, 'options.queueSize', size, { integer: true, min: 1 });
      this.memory = {
        encoder: cloneAsMomentumEncoder(this.encoder),
        projector: cloneAsMomentumEncoder(this.projector),
        queue: new MomentumQueue(size, outputWidth(this.projector), {
          seed: (options.seed ?? 0) + 2,
        }),
      };
    } else if (options.queueSize !== undefined) {
      throw new ContrastiveError({
        caller,
        argument: 'options.queueSize',
        expected: 'undefined unless options.momentum turns the memory network on',
        received: String(options.queueSize),
      });
    }
  }

  protected override networks(): Record<string, tfl.LayersModel> {
    const own = super.networks();
    if (this.memory === undefined) return own;
    return { ...own, memoryEncoder: this.memory.encoder, memoryProjector: this.memory.projector };
  }

  protected override momentumAt(): number | undefined {
    return this.momentum;
  }

  protected override prepare(views: tf.Tensor4D[]): tf.Tensor[] {
    const memory = this.memory;
    if (memory === undefined) return [];
    const [a, b] = views as [tf.Tensor4D, tf.Tensor4D];
    const n = a.shape[0];
    const k = l2Normalize(
      SimCLR.train(memory.projector, SimCLR.train(memory.encoder, tf.concat([a, b], 0))),
    );
    return [tf.slice(k, [0, 0], [n, -1]), tf.slice(k, [n, 0], [n, -1])];
  }

  protected override loss(views: tf.Tensor4D[], prepared: tf.Tensor[]): LossOutput {
    const memory = this.memory;
    if (memory === undefined) return super.loss(views);
    const [a, b] = views as [tf.Tensor4D, tf.Tensor4D];
    const n = a.shape[0];
    const z = SimCLR.train(this.projector, SimCLR.train(this.encoder, tf.concat([a, b], 0)));
    const q1 = tf.slice(z, [0, 0], [n, -1]);
    const q2 = tf.slice(z, [n, 0], [n, -1]);
    const [k1, k2] = prepared as [tf.Tensor2D, tf.Tensor2D];
    const negatives = memory.queue.negatives();
    const options = { negatives, temperature: this.temperature };
    const loss = tf.mul<tf.Scalar>(tf.add(infoNce(q1, k2, options), infoNce(q2, k1, options)), 0.5);
    return { loss, embedding: q1 };
  }

  protected override update(
    _views: tf.Tensor4D[],
    prepared: tf.Tensor[],
    context: StepContext,
  ): void {
    const memory = this.memory;
    if (memory === undefined) return;
    const m = context.momentum ?? 0.99;
    emaUpdate(memory.encoder, this.encoder, m);
    emaUpdate(memory.projector, this.projector, m);
    for (const k of prepared) memory.queue.enqueue(k as tf.Tensor2D);
  }

  protected override stateParts(): Record<string, StatefulPart> {
    return this.memory === undefined ? {} : { queue: this.memory.queue };
  }

  protected override restorePart(name: string, state: ComponentState): void {
    const memory = this.memory;
    if (name !== 'queue' || memory === undefined) {
      super.restorePart(name, state);
      return;
    }
    memory.queue = restoredQueue(`${this.name}.load`, memory.queue, state);
  }

  protected override disposeParts(): void {
    this.memory?.queue.dispose();
  }

  protected override describeConfig(): Record<string, JsonValue> {
    return {
      ...super.describeConfig(),
      momentum: this.momentum ?? null,
      queueSize: this.memory?.queue.size ?? null,
    };
  }
}
