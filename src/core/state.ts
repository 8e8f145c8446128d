import type * as tf from '@tensorflow/tfjs-core';

/** A JSON value: what a component's configuration may hold. */
export type JsonValue =
  null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * The one shape of every stateful part's saved state (queues, memory banks, DINO's center,
 * optimisers, whole method presets): a small JSON configuration and named tensors. The tensors
 * travel as they are (into a safetensors checkpoint, say) instead of as JSON number arrays, which
 * do not scale: a 65,536 x 128 queue is about 170 MB of JSON text and a 1.28 M x 128 bank exceeds
 * V8's string limit.
 *
 * Whoever receives a state owns its tensors: `getState()` returns new tensors the caller
 * disposes, and `fromState(state)` copies what it keeps, so the caller disposes its state after.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { MomentumQueue, type ComponentState } from 'tfjs-contrastive';
 *
 * const queue = new MomentumQueue(4096, 128);
 * const state: ComponentState = queue.getState(); // { config: { size, dim, ... }, tensors: { keys } }
 * const copy = MomentumQueue.fromState(state);
 * tf.dispose(Object.values(state.tensors));
 * ```
 */
export interface ComponentState {
  /** Sizes, momenta, counters, random-generator states: small, plain JSON. */
  readonly config: { readonly [key: string]: JsonValue };
  /** The component's tensors by name. */
  readonly tensors: { readonly [name: string]: tf.Tensor };
}
