export { type Reduction } from './reduction.js';
export { maskedInfoNce, type MaskedInfoNceOptions } from './masked-info-nce.js';
export {
  infoNce,
  type InfoNceOptions,
  type NegativeKeys,
  type NegativeKeysSource,
} from './info-nce.js';
export { ntXentLoss, type NtXentOptions } from './nt-xent.js';
export { supConLoss, type SupConOptions } from './sup-con.js';
export { mocoV3Loss, type MocoV3Options } from './moco-v3.js';
export { invaSpreadLoss, type InvaSpreadOptions } from './inva-spread.js';
export { cmcLoss, type CmcOptions } from './cmc.js';
export { cpcLoss, type CpcOptions } from './cpc.js';
export { viewsLoss, type ViewsLossOptions } from './views-loss.js';
export {
  byolLoss,
  negativeCosineSimilarity,
  simsiamLoss,
  symmetricByolLoss,
  type CosineLossOptions,
} from './negative-cosine.js';
export { sinkhorn, type SinkhornOptions } from './sinkhorn.js';
export { swavLoss, type SwavOptions } from './swav.js';
export { dinoLoss, type DinoOptions } from './dino.js';
export { nceLoss, type MemoryRows, type NceOptions, type NceResult } from './nce.js';
