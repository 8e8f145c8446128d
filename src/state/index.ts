export { Center, type CenterOptions, type CenterState } from './center.js';
export { dinoTeacherTemperature, type TeacherTemperatureOptions } from './teacher-temperature.js';
export { MemoryBank, type MemoryBankOptions, type MemoryBankState } from './memory-bank.js';
export {
  MomentumQueue,
  type MomentumQueueOptions,
  type MomentumQueueState,
} from './momentum-queue.js';
