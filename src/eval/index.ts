export {
  embeddingStd,
  teacherEntropy,
  teacherStudentKl,
  type DinoMonitorOptions,
} from './collapse.js';
export { knnEvaluate, type KnnLabels, type KnnOptions, type KnnResult } from './knn.js';
export {
  reestimateBatchNorm,
  type BatchNormModel,
  type ReestimateBatchNormOptions,
  type ReestimateBatchNormResult,
} from './batch-norm-statistics.js';
