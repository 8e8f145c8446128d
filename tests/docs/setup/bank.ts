/** `bank`, a `MemoryBank` of 1000 entries of dimension 128, with the batch of setup batch-features. */
import * as tc$ from 'tfjs-contrastive';
import { features, indices } from './batch-features.js';
export const bank = new tc$.MemoryBank(1000, 128, { seed: 1 });
bank.update(indices, features);
