export { Center, type CenterOptions } from './center.js';
export { dinoTeacherTemperature, type TeacherTemperatureOptions } from './teacher-temperature.js';
export { MemoryBank, type MemoryBankOptions, type MemoryBankStorage } from './memory-bank.js';
export { MomentumQueue, type MomentumQueueOptions } from './momentum-queue.js';
export {
  cloneAsMomentumEncoder,
  emaUpdate,
  type BufferPolicy,
  type CloneableModel,
  type EmaUpdateOptions,
  type WeightedLayer,
  type WeightedModel,
  type WritableWeight,
} from './momentum-update.js';
export {
  cosineMomentum,
  cosineSchedule,
  linearWarmup,
  warmupCosineLearningRate,
  type WarmupCosineOptions,
} from './lr-schedules.js';
export {
  LARSOptimizer,
  lars,
  registerLarsOptimizer,
  type LarsOptions,
  type NamedTensor,
} from './lars-optimizer.js';
export {
  AdamWOptimizer,
  adamw,
  registerAdamWOptimizer,
  renameOptimizerWeights,
  type AdamWOptions,
} from './adamw-optimizer.js';
export {
  clipGradNorm,
  type ClipGradNormOptions,
  type ClipGradNormResult,
  type GradientCollection,
} from './clip-grad-norm.js';
