/** Writes `./checkpoints/moco/step-2000.safetensors` (a [8, 4] tensor `queue.keys`, metadata `step`). */
import * as tf$ from '@tensorflow/tfjs-core';
import * as tc$ from 'tfjs-contrastive';
await tc$.writeCheckpointBytes(
  './checkpoints/moco/step-2000.safetensors',
  await tc$.encodeSafetensors({ 'queue.keys': tf$.zeros([8, 4]) }, { step: '2000' }),
);
