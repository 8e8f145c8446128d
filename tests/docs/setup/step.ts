/** `step` and `totalSteps`: the current training step (0-based) and the run's length. */
export const step = 10;
export const totalSteps = 100;
