/**
 * `optimizer`: the library's LARS (lr 0.3) after one step on `w` (setup objective), and `lr`, a
 * warm-up + cosine learning-rate schedule over 100 steps.
 */
import * as tc$ from 'tfjs-contrastive';
import { loss } from './objective.js';
export const optimizer = tc$.lars({ learningRate: 0.3 });
optimizer.minimize(loss);
export const lr = tc$.warmupCosineLearningRate({
  baseLearningRate: 0.3,
  warmupSteps: 10,
  totalSteps: 100,
});
