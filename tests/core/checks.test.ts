import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  ContrastiveError,
  checkBoolean,
  checkFinite,
  checkNumber,
  checkOneOf,
  checkSameShape,
  checkTensor,
  describeValue,
  resolveAxis,
  toIndexTensor,
} from '../../src/core/index.js';
import { describeBackends } from '../support/backends.js';

function thrown(f: () => unknown): ContrastiveError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ContrastiveError);
    return e as ContrastiveError;
  }
  throw new Error('expected a ContrastiveError, nothing was thrown');
}

describeBackends('argument checks', () => {
  it('describes values in words', () => {
    const t = tf.zeros([2, 3]);
    expect(describeValue(t)).toBe('a float32 tensor of shape [2, 3]');
    t.dispose();
    expect(describeValue(t)).toBe('a disposed tensor');
    expect(describeValue(-1)).toBe('-1');
    expect(describeValue(Number.NaN)).toBe('NaN');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(null)).toBe('null');
    expect(describeValue('a')).toBe('a string "a"');
    expect(describeValue([1, 2])).toBe('an array of length 2');
    expect(describeValue({})).toBe('an object');
    expect(describeValue(new Map())).toBe('a Map object');
  });

  it('checkTensor names the argument, the expectation and what came', () => {
    const x = tf.zeros([2, 3, 4]);
    const e = thrown(() => {
      checkTensor('myLoss', 'z1', x, { rank: 2, layout: '[N, D]' });
    });
    expect(e.message).toBe(
      "myLoss: argument 'z1' must be a tensor of rank 2 [N, D], but received a float32 tensor of shape [2, 3, 4].",
    );
    expect(thrown(() => checkTensor('f', 'x', x, { dtype: 'int32' })).expected).toBe(
      'a int32 tensor',
    );
    expect(thrown(() => checkTensor('f', 'x', x, { shape: [2, null, 5] })).expected).toBe(
      'a tensor of shape [2, *, 5]',
    );
    expect(() => {
      checkTensor('f', 'x', x, { shape: [2, null, 4], dtype: 'float32', rank: 3 });
    }).not.toThrow();
    expect(thrown(() => checkTensor('f', 'x', [1, 2])).received).toBe('an array of length 2');
    x.dispose();
    expect(thrown(() => checkTensor('f', 'x', x)).received).toBe('a disposed tensor');
  });

  it('checkSameShape refuses broadcasting', () => {
    const a = tf.zeros([4, 8]);
    const b = tf.zeros([1, 8]);
    const e = thrown(() => {
      checkSameShape('byolLoss', 'z', b, 'p', a);
    });
    expect(e.argument).toBe('z');
    expect(e.expected).toBe("a tensor of the same shape as 'p' ([4, 8])");
    expect(() => {
      checkSameShape('f', 'b', a, 'a', a);
    }).not.toThrow();
    tf.dispose([a, b]);
  });

  it('checkNumber enforces finiteness, integrality and bounds', () => {
    expect(
      thrown(() => checkNumber('f', 'options.temperature', 0, { greaterThan: 0 })).message,
    ).toBe("f: argument 'options.temperature' must be a finite number > 0, but received 0.");
    expect(thrown(() => checkNumber('f', 't', Number.NaN)).received).toBe('NaN');
    expect(thrown(() => checkNumber('f', 't', Infinity)).received).toBe('Infinity');
    expect(thrown(() => checkNumber('f', 'k', 2.5, { integer: true })).expected).toBe('an integer');
    expect(thrown(() => checkNumber('f', 'm', 1.5, { min: 0, max: 1 })).expected).toBe(
      'a finite number >= 0 and <= 1',
    );
    expect(thrown(() => checkNumber('f', 'm', 1, { lessThan: 1 })).expected).toBe(
      'a finite number < 1',
    );
    expect(thrown(() => checkNumber('f', 'm', '1')).received).toBe('a string "1"');
    expect(() => {
      checkNumber('f', 'm', 1, { min: 1, max: 1, integer: true });
    }).not.toThrow();
  });

  it('checkOneOf lists the accepted values', () => {
    expect(
      thrown(() => checkOneOf('f', 'options.reduction', 'avg', ['mean', 'sum'])).expected,
    ).toBe("one of 'mean', 'sum'");
    expect(() => {
      checkOneOf('f', 'r', 'sum', ['mean', 'sum']);
    }).not.toThrow();
  });

  it('checkFinite reports the first non-finite element', () => {
    const x = tf.tensor1d([0, 1, Number.NaN, Infinity]);
    expect(thrown(() => checkFinite('f', 'x', x)).received).toBe(
      'a float32 tensor of shape [4] with NaN at flat index 2',
    );
    const y = tf.tensor1d([0, -1e30]);
    expect(() => {
      checkFinite('f', 'y', y);
    }).not.toThrow();
    tf.dispose([x, y]);
  });

  it('resolveAxis accepts [-rank, rank) and nothing else', () => {
    expect(resolveAxis('f', 'axis', -1, 3)).toBe(2);
    expect(resolveAxis('f', 'axis', 0, 3)).toBe(0);
    expect(thrown(() => resolveAxis('f', 'axis', 3, 3)).expected).toBe('an integer >= -3 and <= 2');
    expect(thrown(() => resolveAxis('f', 'axis', -4, 3)).argument).toBe('axis');
  });
});

describeBackends('checkBoolean', () => {
  it('accepts true and false only', () => {
    expect(() => {
      checkBoolean('f', 'options.normalize', false);
    }).not.toThrow();
    expect(() => {
      checkBoolean('f', 'options.normalize', 'yes');
    }).toThrow(
      'f: argument \'options.normalize\' must be true or false, but received a string "yes".',
    );
  });
});

describeBackends('toIndexTensor', () => {
  it('converts arrays with a range check and passes int32 tensors through', () => {
    const t = toIndexTensor('f', 'indices', [0, 2], 3);
    expect(t.dtype).toBe('int32');
    expect(Array.from(t.dataSync())).toEqual([0, 2]);
    const own = tf.tensor1d([1], 'int32');
    expect(toIndexTensor('f', 'indices', own, 3)).toBe(own);
    expect(() => toIndexTensor('f', 'indices', [0, 1.5], 3)).toThrow(
      "f: argument 'indices[1]' must be an integer index in [0, 3), but received 1.5.",
    );
    const floats = tf.tensor1d([1]);
    expect(() => toIndexTensor('f', 'indices', floats, 3)).toThrow(
      "argument 'indices' must be a int32 tensor",
    );
    expect(() => toIndexTensor('f', 'indices', 'x', 3)).toThrow(ContrastiveError);
    tf.dispose([t, own, floats]);
  });
});
