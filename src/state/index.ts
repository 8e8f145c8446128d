export { Center, type CenterOptions, type CenterState } from './center.js';
export { dinoTeacherTemperature, type TeacherTemperatureOptions } from './teacher-temperature.js';
export { MemoryBank, type MemoryBankOptions, type MemoryBankState } from './memory-bank.js';
export {
  MomentumQueue,
  type MomentumQueueOptions,
  type MomentumQueueState,
} from './momentum-queue.js';
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
