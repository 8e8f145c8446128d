/**
 * The page the browser tests load: the library and tfjs-core, bundled by esbuild from source, on
 * `window.lib` and `window.tf`. The backends stay dynamic imports (separate chunks), loaded by
 * selectBackend as in an application.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers'; // also registers the gradients
import * as lib from '../../src/index.js';
import * as layers from '../../src/layers/index.js';
import { convStepGradientNorms } from '../support/conv-step.js';
import { runCase } from '../support/infonce-cases.js';
import { runNegativeFreeCase } from '../support/negative-free-cases.js';

declare global {
  interface Window {
    tf: typeof tf;
    lib: typeof lib;
    layers: typeof layers;
    tfl: typeof tfl;
    runCase: typeof runCase;
    runNegativeFreeCase: typeof runNegativeFreeCase;
    convStepGradientNorms: typeof convStepGradientNorms;
  }
}

tf.enableProdMode();
window.tf = tf;
window.lib = lib;
window.layers = layers;
window.tfl = tfl;
layers.registerLayers();
window.runCase = runCase;
window.runNegativeFreeCase = runNegativeFreeCase;
window.convStepGradientNorms = convStepGradientNorms;
