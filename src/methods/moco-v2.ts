import { mocoV2Recipe } from '../augment/index.js';
import { mocoV2Projector } from '../layers/index.js';
import { MoCo, type MocoOptions, type MocoVariant } from './moco.js';

const V2: MocoVariant = {
  name: 'mocoV2',
  temperature: 0.2,
  recipe: mocoV2Recipe,
  head: (f, o, seed) =>
    mocoV2Projector({
      inputDim: f,
      hiddenDim: o.hiddenDim ?? f,
      outputDim: o.projectionDim ?? 128,
      seed,
    }),
};

/**
 * MoCo v2 (Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning"): MoCo v1
 * with SimCLR's two improvements, an MLP head (dense F -> ReLU -> dense 128, no batch norm) and
 * stronger augmentation (blur), and temperature 0.2; the cosine learning-rate decay is the
 * presets' default schedule. Everything else as {@link moco}: queue K 4096, momentum 0.99,
 * split batch norm for the keys, SGD (momentum 0.9, lr 0.06, wd 5e-4; under 96 px AdamW lr
 * 1e-3). Views: MoCo v2's recipe from 96 px, {@link index!smallImageRecipe} below.
 *
 * @param options - the encoder and {@link MocoOptions}.
 * @returns the preset.
 * @throws {@link index!ContrastiveError} on bad options.
 *
 * @example
 * <!-- snippet setup="images" -->
 * ```ts
 * import { mocoV2 } from 'tfjs-contrastive/methods';
 * import { smallConvNet } from 'tfjs-contrastive/layers';
 *
 * const method = mocoV2({ encoder: smallConvNet({ inputShape: [32, 32, 3], seed: 1 }), queueSize: 4096 });
 * const { loss } = await method.trainStep({ images }); // images: [B, 32, 32, 3] in [0, 1]
 * ```
 */
export function mocoV2(options: MocoOptions): MoCo {
  return new MoCo(options, V2);
}
