/**
 * Run as its own process by tests/core/kernel-fixes-order.test.ts: installs the kernel fixes
 * before the wasm backend initialises (the replaced kernels' native bindings are set up by their
 * setup functions at initialisation, which the replacements must carry), then runs a conv step.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { installKernelFixes } from '../../src/core/index.js';
import { convStepGradientNorms } from './conv-step.js';

tf.enableProdMode();
const report = installKernelFixes('wasm');
const ok = await tf.setBackend('wasm');
const grads = convStepGradientNorms();
console.log(
  JSON.stringify({ ok, backend: tf.getBackend(), kernels: report.kernels.length, grads }),
);
