/**
 * The details a {@link ContrastiveError} carries besides its message.
 */
export interface ContrastiveErrorDetails {
  /** The public function, method or constructor that rejected its input, e.g. `'ntXentLoss'`. */
  readonly caller: string;
  /** The argument (or option) that was wrong, e.g. `'z1'` or `'options.temperature'`. */
  readonly argument: string;
  /** What was expected, in words, e.g. `'a rank-2 tensor [N, D]'`. */
  readonly expected: string;
  /** What was received, in words, e.g. `'a rank-3 tensor of shape [2, 3, 4]'`. */
  readonly received: string;
}

/**
 * The library's own error type: every check of user input throws one, naming the function, the
 * argument, what was expected and what was received, instead of a raw tfjs stack trace, a silent
 * broadcast or a NaN further down.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { ContrastiveError, l2Normalize } from 'tfjs-contrastive';
 * const x = tf.ones([4, 8]);
 * try {
 *   l2Normalize(x, 5); // a rank-2 tensor has no axis 5
 * } catch (e) {
 *   if (e instanceof ContrastiveError) console.log(e.argument, e.expected, e.received);
 * }
 * ```
 */
export class ContrastiveError extends Error {
  /** The public function, method or constructor that rejected its input. */
  readonly caller: string;
  /** The argument (or option) that was wrong. */
  readonly argument: string;
  /** What was expected, in words. */
  readonly expected: string;
  /** What was received, in words. */
  readonly received: string;

  /**
   * Builds the message `caller: argument 'argument' must be expected, but received received.`
   *
   * @param details - who rejected which argument, what it expected and what it received.
   * @param hint - an optional sentence appended to the message (how to fix it).
   */
  constructor(details: ContrastiveErrorDetails, hint?: string) {
    super(
      `${details.caller}: argument '${details.argument}' must be ${details.expected}, ` +
        `but received ${details.received}.${hint === undefined ? '' : ` ${hint}`}`,
    );
    this.name = 'ContrastiveError';
    this.caller = details.caller;
    this.argument = details.argument;
    this.expected = details.expected;
    this.received = details.received;
  }
}
