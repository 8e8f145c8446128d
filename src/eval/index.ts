export {
  embeddingStd,
  teacherEntropy,
  teacherStudentKl,
  type DinoMonitorOptions,
} from './collapse.js';
