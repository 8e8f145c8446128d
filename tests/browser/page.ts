/**
 * The page the browser tests load: the library and tfjs-core, bundled by esbuild from source, on
 * `window.lib` and `window.tf`. The backends stay dynamic imports (separate chunks), loaded by
 * selectBackend as in an application.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as lib from '../../src/index.js';

declare global {
  interface Window {
    tf: typeof tf;
    lib: typeof lib;
  }
}

tf.enableProdMode();
window.tf = tf;
window.lib = lib;
