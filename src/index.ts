/**
 * tfjs-contrastive: contrastive and self-supervised learning for TensorFlow.js.
 *
 * The root entry re-exports every layer of the library; the subpath entries
 * (`tfjs-contrastive/core`, ...) export one layer each. With a bundler both tree-shake to what is
 * imported.
 *
 * @packageDocumentation
 */
export * from './core/index.js';
export * from './losses/index.js';
export * from './state/index.js';
export * from './eval/index.js';
