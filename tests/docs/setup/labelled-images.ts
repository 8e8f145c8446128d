/**
 * `encoder`, a `smallConvNet` of widths [8, 16] ([B, 16] features) standing in for a trained
 * one, with the images and labels of setup labelled-data.
 */
import * as layers$ from 'tfjs-contrastive/layers';
import './labelled-data.js';
export const encoder = layers$.smallConvNet({ inputShape: [28, 28, 1], widths: [8, 16], seed: 2 });
