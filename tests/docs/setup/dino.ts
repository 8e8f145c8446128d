/** `center`, DINO's `Center` of K = 256, with the head outputs of setup dino-outputs. */
import * as tc$ from 'tfjs-contrastive';
import { teacherOut } from './dino-outputs.js';
export const center = new tc$.Center(256);
center.update(teacherOut);
