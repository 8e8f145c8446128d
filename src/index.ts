/**
 * tfjs-contrastive: contrastive and self-supervised learning for TensorFlow.js.
 *
 * The root entry re-exports the layers of the library that need only tfjs-core (core, losses,
 * state, augment, eval); the subpath entries (`tfjs-contrastive/core`, ...) export one layer each.
 * The tfjs-layers code (`tfjs-contrastive/layers`, `tfjs-contrastive/register`) and the Node IO
 * handler (`tfjs-contrastive/io`) are subpaths only. With a bundler every entry tree-shakes to
 * what is imported.
 *
 * @packageDocumentation
 */
export * from './core/index.js';
export * from './losses/index.js';
export * from './state/index.js';
export * from './augment/index.js';
export * from './eval/index.js';
