export { L2Normalize, type L2NormalizeArgs } from './l2-normalize-layer.js';
export { BatchNorm, type BatchNormArgs } from './batch-norm.js';
export { WeightNormDense, type WeightNormDenseArgs } from './weight-norm-dense.js';
export { Prototypes, type PrototypesArgs } from './prototypes.js';
export {
  ClassTokenPosition,
  type ClassTokenPositionArgs,
  MultiHeadSelfAttention,
  SelectToken,
  type MultiHeadSelfAttentionArgs,
  type SelectTokenArgs,
} from './vit-layers.js';
export {
  mlpHead,
  simclrV1Projector,
  simclrV2Projector,
  mocoV2Projector,
  mocoV3Projector,
  mocoV3Predictor,
  byolProjector,
  byolPredictor,
  simsiamProjector,
  simsiamPredictor,
  swavProjectionHead,
  dinoHead,
  type DinoHeadArgs,
  type HeadBatchNorm,
  type HeadBlock,
  type HeadDims,
  type MlpHeadArgs,
} from './heads.js';
export {
  smallConvNet,
  smallResNet,
  tinyVit,
  type SmallConvNetArgs,
  type SmallResNetArgs,
  type TinyVitArgs,
} from './backbones.js';
export { registerLayers, LAYER_CLASSES } from './register.js';
export { trainableFromStep, type BaseLayerArgs } from './base.js';
export {
  splitBatchNormApply,
  randomPermutation,
  type SplitBatchNormOptions,
} from './split-batch-norm.js';
export { Gru, type GruArgs } from './gru.js';
