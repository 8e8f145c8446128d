export {
  embeddingStd,
  teacherEntropy,
  teacherStudentKl,
  type DinoMonitorOptions,
} from './collapse.js';
export { knnEvaluate, type KnnLabels, type KnnOptions, type KnnResult } from './knn.js';
export {
  linearProbe,
  type LinearProbeOptions,
  type LinearProbeResult,
  type LinearProbeWeights,
} from './linear-probe.js';
export {
  reestimateBatchNorm,
  type BatchNormModel,
  type ReestimateBatchNormOptions,
  type ReestimateBatchNormResult,
} from './batch-norm-statistics.js';
