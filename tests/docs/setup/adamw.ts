/**
 * `optimizer`: the library's AdamW (lr 1e-3, weight decay 0.05) after one step on `w` (setup
 * objective), and `lr`, a warm-up + cosine learning-rate schedule over 100 steps.
 */
import * as tc$ from 'tfjs-contrastive';
import { loss } from './objective.js';
export const optimizer = tc$.adamw({ learningRate: 1e-3, weightDecay: 0.05 });
optimizer.minimize(loss);
export const lr = tc$.warmupCosineLearningRate({
  baseLearningRate: 1e-3,
  warmupSteps: 10,
  totalSteps: 100,
});
