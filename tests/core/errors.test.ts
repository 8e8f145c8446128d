import { describe, expect, it } from 'vitest';
import { ContrastiveError } from '../../src/core/index.js';

describe('ContrastiveError', () => {
  it('carries caller, argument, expectation and what was received, in fields and message', () => {
    const e = new ContrastiveError(
      { caller: 'f', argument: 'x', expected: 'a tensor', received: 'undefined' },
      'Pass a tensor.',
    );
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ContrastiveError');
    expect([e.caller, e.argument, e.expected, e.received]).toEqual([
      'f',
      'x',
      'a tensor',
      'undefined',
    ]);
    expect(e.message).toBe(
      "f: argument 'x' must be a tensor, but received undefined. Pass a tensor.",
    );
  });
});
