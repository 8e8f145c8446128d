import { checkNumber } from '../core/index.js';

/** Options of {@link dinoTeacherTemperature}. */
export interface TeacherTemperatureOptions {
  /** Temperature at epoch 0. Default `0.04`. */
  readonly start?: number;
  /** Temperature after the warm-up. Default `0.07` (the DINO README's recommendation; above is unstable). */
  readonly end?: number;
  /** Warm-up length in epochs. Default `30` (DINO's `warmup_teacher_temp_epochs`; `0` = no warm-up). */
  readonly warmupEpochs?: number;
}

/**
 * DINO's teacher-temperature schedule (main_dino.py `DINOLoss`): a linear warm-up from `start` to
 * `end` over `warmupEpochs` epochs, `np.linspace(start, end, warmupEpochs)` (both ends included),
 * then `end`. An explicit schedule because the defaults confused users (dino PR #285): the
 * official script's defaults keep 0.04 throughout, while its README recommends this warm-up to 0.07.
 *
 * @param epoch - the current epoch, >= 0. A fractional epoch (a preset's step / steps per
 *   epoch) interpolates linearly between the integer epochs; from epoch `warmupEpochs - 1` on,
 *   where the linspace ends, the result is `end` exactly, never beyond it.
 * @param options - `start` (0.04), `end` (0.07), `warmupEpochs` (30).
 * @returns the teacher temperature for that epoch.
 * @throws {@link ContrastiveError} when the epoch is negative or a temperature is not positive.
 *
 * @example
 * ```ts
 * import { dinoTeacherTemperature } from 'tfjs-contrastive';
 *
 * const epoch = 10; // the current epoch
 * const tauT = dinoTeacherTemperature(epoch, { start: 0.04, end: 0.07, warmupEpochs: 30 });
 * ```
 */
export function dinoTeacherTemperature(
  epoch: number,
  options: TeacherTemperatureOptions = {},
): number {
  const caller = 'dinoTeacherTemperature';
  checkNumber(caller, 'epoch', epoch, { min: 0 });
  const start = options.start ?? 0.04;
  const end = options.end ?? 0.07;
  const warmup = options.warmupEpochs ?? 30;
  checkNumber(caller, 'options.start', start, { greaterThan: 0 });
  checkNumber(caller, 'options.end', end, { greaterThan: 0 });
  checkNumber(caller, 'options.warmupEpochs', warmup, { integer: true, min: 0 });
  if (epoch >= warmup) return end;
  // np.linspace(start, end, warmup) has its last entry at index warmup - 1.
  if (warmup === 1) return start;
  if (epoch >= warmup - 1) return end;
  return start + ((end - start) * epoch) / (warmup - 1);
}
