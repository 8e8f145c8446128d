export { ContrastiveError, type ContrastiveErrorDetails } from './errors.js';
export {
  checkBoolean,
  checkFinite,
  checkNumber,
  checkOneOf,
  checkSameShape,
  checkTensor,
  describeValue,
  resolveAxis,
  toIndexTensor,
  type NumberSpec,
  type TensorSpec,
} from './checks.js';
export { stopGradient } from './stop-gradient.js';
export { trainableVariables, type HasTrainableWeights } from './trainable-variables.js';
export { l2Normalize } from './l2-normalize.js';
export { SeededRandom, type SeededRandomState } from './random.js';
export {
  runtimeEnvironment,
  selectBackend,
  type BackendChoice,
  type BackendInfo,
  type BackendName,
  type RuntimeEnvironment,
  type SelectBackendOptions,
} from './backend.js';
export {
  KERNEL_FIXES_CHECKED_ON,
  installKernelFixes,
  removeKernelFixes,
  type KernelFixBackend,
  type KernelFixOptions,
  type KernelFixReport,
} from './kernels/install.js';
export type { ComponentState, JsonValue } from './state.js';
export {
  decodeSafetensors,
  encodeSafetensors,
  parseSafetensors,
  safetensorsValues,
  serializeSafetensors,
  type DecodedSafetensors,
  type ParsedSafetensors,
  type SafetensorsArray,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsTensorInput,
  type SafetensorsValues,
} from './safetensors.js';
export {
  CHECKPOINT_DATABASE,
  CHECKPOINT_STORE,
  readCheckpointBytes,
  writeCheckpointBytes,
} from './checkpoint-storage.js';
