export { Center, type CenterOptions, type CenterState } from './center.js';
export { dinoTeacherTemperature, type TeacherTemperatureOptions } from './teacher-temperature.js';
