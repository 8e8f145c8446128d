export {
  SslMethod,
  disposeModel,
  type LossOutput,
  type MethodDefaults,
  type StatefulPart,
  type StepContext,
} from './method.js';
export type {
  AsyncIteratorLike,
  Batch,
  FitCallbacks,
  FitData,
  FitLogs,
  FitOptions,
  FitResult,
  OptimizerName,
  SslMethodOptions,
  StepMetrics,
  TrainStepResult,
} from './types.js';
export { COLLAPSE_WINDOW } from './types.js';
export { SIMCLR_DEFAULTS, SimCLR, simclr, type SimclrOptions } from './simclr.js';
export { SimCLRv2, simclrV2, type SimclrV2Options } from './simclr-v2.js';
export { MOCO_DEFAULTS, MoCo, moco, type MocoOptions, type MocoVariant } from './moco.js';
export { mocoV2 } from './moco-v2.js';
export { BYOL, BYOL_DEFAULTS, byol, type ByolOptions } from './byol.js';
export { SWAV_DEFAULTS, SwAV, swav, type SwavMethodOptions } from './swav.js';
export type { RunPoint } from './parts.js';
export {
  DINO,
  DINO_DEFAULTS,
  dino,
  type DinoMethodOptions,
  type GradientClipMode,
} from './dino.js';
export { SIMSIAM_DEFAULTS, SimSiam, simsiam, type SimsiamOptions } from './simsiam.js';
export {
  MOCO_V3_DEFAULTS,
  MoCoV3,
  mocoV3,
  type MocoV3Backbone,
  type MocoV3Options,
} from './moco-v3.js';
export {
  INST_DISC_DEFAULTS,
  InstDisc,
  instDisc,
  type InstDiscObjective,
  type InstDiscOptions,
} from './inst-disc.js';
export {
  INVA_SPREAD_DEFAULTS,
  InvaSpread,
  invaSpread,
  type InvaSpreadMethodOptions,
} from './inva-spread.js';
export {
  CPC,
  CPC_DEFAULTS,
  cpc,
  type CpcEmbedding,
  type CpcInput,
  type CpcMethodOptions,
} from './cpc.js';
export { CMC, CMC_DEFAULTS, cmc, type CmcMethodOptions, type CmcViewSplit } from './cmc.js';
