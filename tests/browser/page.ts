/**
 * The page the browser tests load: the library and tfjs-core, bundled by esbuild from source, on
 * `window.lib` and `window.tf`. Like a bundled application, the page imports the backends itself
 * (selectBackend cannot load them on demand in a bundle) and hands wasm's module over
 * (`window.wasm`, for `wasmModule`).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import * as tfl from '@tensorflow/tfjs-layers'; // also registers the gradients
import * as lib from '../../src/index.js';
import * as layers from '../../src/layers/index.js';
import { convStepGradientNorms } from '../support/conv-step.js';
import { runCase } from '../support/infonce-cases.js';
import { runNegativeFreeCase } from '../support/negative-free-cases.js';

declare global {
  interface Window {
    tf: typeof tf;
    wasm: typeof wasm;
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
window.wasm = wasm;
window.lib = lib;
window.layers = layers;
window.tfl = tfl;
layers.registerLayers();
window.runCase = runCase;
window.runNegativeFreeCase = runNegativeFreeCase;
window.convStepGradientNorms = convStepGradientNorms;
