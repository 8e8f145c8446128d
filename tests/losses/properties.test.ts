/**
 * Closed forms, symmetries, equivalences between the losses, finite-difference gradients,
 * descent, the effect of every option, numerical stability and argument errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  ContrastiveError,
  cmcLoss,
  cpcLoss,
  infoNce,
  invaSpreadLoss,
  maskedInfoNce,
  mocoV3Loss,
  ntXentLoss,
  supConLoss,
} from '../../src/index.js';
import { describeBackends, expectClose, finiteDifferenceGradient } from '../support/backends.js';

const value = (t: tf.Tensor): number => {
  const v = t.dataSync()[0] as number;
  t.dispose();
  return v;
};

const randn = (shape: number[], seed: number, scale = 1): tf.Tensor2D =>
  tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed), scale));

describeBackends('InfoNCE family: closed forms', ({ tol }) => {
  it('identical embeddings give log of the number of candidates', () => {
    const n = 5;
    const k = 7;
    const z = tf.ones([n, 4]) as tf.Tensor2D;
    const neg = tf.ones([k, 4]) as tf.Tensor2D;
    const ids = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4];
    const z2n = tf.ones([2 * n, 4]) as tf.Tensor2D;
    expectClose(value(ntXentLoss(z, z)), Math.log(2 * n - 1), tol, 'NT-Xent log(2N - 1)');
    expectClose(
      value(infoNce(z, z, { negatives: neg })),
      Math.log(k + 1),
      tol,
      'InfoNCE log(K + 1)',
    );
    expectClose(value(infoNce(z, z)), Math.log(n), tol, 'in-batch InfoNCE log(N)');
    expectClose(
      value(mocoV3Loss(z, z, { temperature: 0.2 })),
      0.4 * Math.log(n),
      tol,
      'MoCo v3 2 tau log N',
    );
    expectClose(value(supConLoss(z2n, ids)), Math.log(2 * n - 1), tol, 'SupCon log(2N - 1)');
    expectClose(value(cmcLoss([z, z, z])), 6 * Math.log(n), tol, 'CMC, 6 directed pairs');
    expectClose(value(cpcLoss(z, z)), Math.log(n), tol, 'CPC log(N)');
    // InvaSpread: P = 1/(2B-1) for the positive and each of the 2B-2 negatives.
    const m = 2 * n - 1;
    expectClose(
      value(invaSpreadLoss(z, z)),
      Math.log(m) - (m - 1) * Math.log(1 - 1 / m),
      tol,
      'InvaSpread',
    );
    tf.dispose([z, neg, z2n]);
  });

  it('perfectly separated embeddings at a low temperature give a loss near 0', () => {
    const e = tf.eye(4) as tf.Tensor2D;
    expect(value(ntXentLoss(e, e, { temperature: 0.01 }))).toBeLessThan(1e-6);
    expect(value(infoNce(e, e, { temperature: 0.01 }))).toBeLessThan(1e-6);
    e.dispose();
  });
});

describeBackends('InfoNCE family: symmetries and equivalences', ({ tol }) => {
  it('NT-Xent, InvaSpread and full-graph CMC are symmetric in the two views', () => {
    const a = randn([6, 8], 1);
    const b = randn([6, 8], 2);
    expectClose(value(ntXentLoss(a, b)), value(ntXentLoss(b, a)), tol);
    expectClose(value(invaSpreadLoss(a, b)), value(invaSpreadLoss(b, a)), tol);
    expectClose(value(cmcLoss([a, b])), value(cmcLoss([b, a])), tol);
    tf.dispose([a, b]);
  });

  it('permuting the batch (both views alike) leaves NT-Xent and SupCon unchanged', () => {
    const a = randn([5, 8], 3);
    const b = randn([5, 8], 4);
    const perm = tf.tensor1d([3, 0, 4, 1, 2], 'int32');
    const [pa, pb] = [tf.gather(a, perm), tf.gather(b, perm)] as tf.Tensor2D[];
    expectClose(value(ntXentLoss(pa!, pb!)), value(ntXentLoss(a, b)), tol);
    const labels = [0, 1, 0, 2, 1];
    const permLabels = [3, 0, 4, 1, 2].map((i) => labels[i]!);
    expectClose(value(supConLoss(pa!, permLabels)), value(supConLoss(a, labels)), tol);
    tf.dispose([a, b, perm, pa!, pb!]);
  });

  it('NT-Xent = SupCon with instance ids = maskedInfoNce with the partner mask', () => {
    const n = 4;
    const tau = 0.3;
    const a = randn([n, 8], 5);
    const b = randn([n, 8], 6);
    const nt = value(ntXentLoss(a, b, { temperature: tau }));
    const ab = tf.concat([a, b]);
    const sup = value(supConLoss(ab, [0, 1, 2, 3, 0, 1, 2, 3], { temperature: tau }));
    ab.dispose();
    const masked = tf.tidy(() => {
      const z = tf.div(tf.concat([a, b]), tf.norm(tf.concat([a, b]), 'euclidean', 1, true));
      const logits = tf.div(tf.matMul(z, z, false, true), tau) as tf.Tensor2D;
      const idx = tf.range(0, 2 * n, 1, 'int32');
      const partner = tf.equal(
        tf.reshape(tf.mod(tf.add(idx, n), 2 * n), [-1, 1]),
        tf.reshape(idx, [1, -1]),
      );
      const notSelf = tf.notEqual(tf.reshape(idx, [-1, 1]), tf.reshape(idx, [1, -1]));
      return maskedInfoNce(logits, partner as tf.Tensor2D, { validMask: notSelf });
    });
    expectClose(sup, nt, tol, 'SupCon');
    expectClose(value(masked), nt, tol, 'maskedInfoNce');
    tf.dispose([a, b]);
  });

  it('chunked negatives equal their concatenation; CMC and CPC reduce to InfoNCE', () => {
    const q = randn([3, 8], 7);
    const k = randn([3, 8], 8);
    const n1 = randn([4, 8], 9);
    const n2 = randn([5, 8], 10);
    const all = tf.concat([n1, n2]);
    expectClose(
      value(infoNce(q, k, { negatives: [n1, n2] })),
      value(infoNce(q, k, { negatives: all })),
      tol,
    );
    expectClose(
      value(cmcLoss([q, k], { temperature: 0.2 })),
      value(infoNce(q, k, { temperature: 0.2 })) + value(infoNce(k, q, { temperature: 0.2 })),
      tol,
    );
    expectClose(
      value(cpcLoss(q, k)),
      value(infoNce(q, k, { temperature: 1, normalize: false })),
      tol,
    );
    expectClose(
      value(mocoV3Loss(q, k, { temperature: 0.5 })),
      value(infoNce(q, k, { temperature: 0.5 })),
      tol,
    );
    tf.dispose([q, k, n1, n2, all]);
  });

  it("reduction: 'sum' is N times 'mean', and 'none' holds the per-sample losses", () => {
    const a = randn([4, 6], 11);
    const b = randn([4, 6], 12);
    const mean = value(ntXentLoss(a, b));
    expectClose(value(ntXentLoss(a, b, { reduction: 'sum' })), 8 * mean, tol);
    const none = ntXentLoss(a, b, { reduction: 'none' });
    expect(none.shape).toEqual([8]);
    expectClose(value(tf.mean(none)), mean, tol);
    none.dispose();
    tf.dispose([a, b]);
  });
});

describeBackends('InfoNCE family: gradients', ({ tol }) => {
  const cases: [string, (x: tf.Tensor2D, other: tf.Tensor2D) => tf.Tensor][] = [
    ['ntXentLoss', (x, o) => ntXentLoss(x, o, { temperature: 0.5 })],
    [
      'infoNce with negatives',
      (x, o) => infoNce(x, o, { negatives: tf.reverse(o, 0), temperature: 0.3 }),
    ],
    [
      'infoNce in-batch, unnormalised',
      (x, o) => infoNce(x, o, { temperature: 2, normalize: false }),
    ],
    [
      'supConLoss',
      (x, o) => supConLoss(tf.concat([x, o]), [0, 1, 0, 1, 2, 2], { temperature: 0.5 }),
    ],
    ['mocoV3Loss', (x, o) => mocoV3Loss(x, o, { temperature: 0.4 })],
    ['cmcLoss', (x, o) => cmcLoss([x, o, tf.reverse(o, 1)], { temperature: 0.5 })],
    [
      'cpcLoss sameStep',
      (x, o) =>
        cpcLoss(tf.reshape<tf.Rank.R3>(x, [3, 1, 4]), tf.reshape<tf.Rank.R3>(o, [3, 1, 4]), {
          negatives: 'sameStep',
        }),
    ],
  ];
  for (const [name, f] of cases) {
    it(`${name}: autodiff agrees with central finite differences`, () => {
      const x = randn([3, 4], 21);
      const o = randn([3, 4], 22);
      const loss = (v: tf.Tensor): tf.Scalar => f(v as tf.Tensor2D, o) as tf.Scalar;
      const g = tf.grad(loss)(x);
      const fd = finiteDifferenceGradient(loss, x, 1e-2);
      expectClose(g, fd, 5e-3, `${name} gradient`);
      tf.dispose([x, o, g]);
    });
  }

  it('invaSpreadLoss: the compared-with side carries no gradient (as in the authors code)', () => {
    // Gradient only through the anchor rows: equal to the gradient of the same formula with the
    // right-hand side of every similarity held constant, checked by finite differences on it.
    const a = randn([3, 4], 23);
    const b = randn([3, 4], 24);
    const g = tf.grad((v: tf.Tensor) => invaSpreadLoss(v as tf.Tensor2D, b) as tf.Scalar)(a);
    const fz = tf.tidy(() => {
      const frozen = tf.concat([a, b]);
      return tf.div<tf.Tensor2D>(frozen, tf.norm(frozen, 'euclidean', 1, true));
    });
    const anchorOnly = (v: tf.Tensor): tf.Scalar =>
      tf.tidy(() => {
        const x = tf.concat([v, b]);
        const xn = tf.div(x, tf.norm(x, 'euclidean', 1, true));
        const s = tf.div(tf.matMul(xn, fz, false, true), 0.1);
        const n2 = 6;
        const eye = tf.eye(n2);
        const others = tf.add(s, tf.mul(eye, -1e9));
        const logP = tf.sub(s, tf.logSumExp(others, 1, true));
        const pos = tf.concat([
          tf.concat([tf.zeros([3, 3]), tf.eye(3)], 1),
          tf.concat([tf.eye(3), tf.zeros([3, 3])], 1),
        ]);
        const neg = tf.sub(tf.sub(tf.onesLike(eye), eye), pos);
        const lp = tf.sum(tf.mul(pos, logP), 1);
        const safe = tf.where(tf.greater(neg, 0), logP, tf.fill(logP.shape, -1));
        const ln = tf.sum(tf.mul(neg, tf.log(tf.sub(1, tf.exp(safe)))), 1);
        return tf.mean(tf.neg(tf.add(lp, ln))) as tf.Scalar;
      });
    const fd = finiteDifferenceGradient(anchorOnly, a, 1e-2);
    expectClose(g, fd, 5e-3, 'anchor-side gradient');
    tf.dispose([a, b, g, fz]);
  });

  it('explicit negatives are constants: no gradient reaches them, even as trainable variables', () => {
    const q = tf.tidy(() => tf.variable(randn([3, 4], 25), true, 'q'));
    const k = randn([3, 4], 26);
    const bank = tf.tidy(() => tf.variable(randn([5, 4], 27), true, 'bank'));
    const { value: loss, grads } = tf.variableGrads(
      () => infoNce(q, k, { negatives: bank }) as tf.Scalar,
      [q, bank],
    );
    expect(Object.keys(grads)).toEqual(['q']);
    const cmc = tf.variableGrads(
      () => cmcLoss([q, k], { negativesPerView: [bank, bank] }) as tf.Scalar,
      [q, bank],
    );
    expect(Object.keys(cmc.grads)).toEqual(['q']);
    tf.dispose([q, k, bank, loss, cmc.value, ...Object.values(grads), ...Object.values(cmc.grads)]);
  });

  it('cmcLoss positivesPerView: the same values as the live keys, and no gradient into them', () => {
    const a = tf.tidy(() => tf.variable(randn([4, 6], 28)));
    const b = tf.tidy(() => tf.variable(randn([4, 6], 29)));
    const pa = tf.tidy(() => tf.variable(randn([4, 6], 28))); // the values of a
    const pb = tf.tidy(() => tf.variable(randn([4, 6], 29))); // the values of b
    const negs = randn([5, 6], 30);
    const options = { temperature: 0.3, negativesPerView: [negs, negs] };
    const live = tf.variableGrads(() => cmcLoss([a, b], options) as tf.Scalar, [a, b]);
    const banked = tf.variableGrads(
      () => cmcLoss([a, b], { ...options, positivesPerView: [pa, pb] }) as tf.Scalar,
      [a, b, pa, pb],
    );
    expectClose(banked.value, live.value, tol, 'loss with constant positives of the same values');
    // Only the queries carry gradient: none reaches the positives, and d/da is the query side of
    // the live gradient alone.
    for (const p of [pa, pb]) {
      const g = banked.grads[p.name];
      expect(g === undefined || g.dataSync().every((x) => x === 0)).toBe(true);
    }
    const queryOnly = tf.variableGrads(
      () =>
        tf.add(
          infoNce(a, tf.clone(pb), { temperature: 0.3, negatives: negs }),
          infoNce(b, tf.clone(pa), { temperature: 0.3, negatives: negs }),
        ) as tf.Scalar,
      [a, b],
    );
    for (const [x, what] of [
      [a, 'd/da'],
      [b, 'd/db'],
    ] as const) {
      expectClose(
        banked.grads[x.name] as tf.Tensor,
        queryOnly.grads[x.name] as tf.Tensor,
        tol,
        what,
      );
    }
    expect(() => cmcLoss([a, b], { positivesPerView: [pa] })).toThrow(
      "cmcLoss: argument 'options.positivesPerView' must be an array with one [4, 6] entry per view (2)",
    );
    expect(() => cmcLoss([a, b], { positivesPerView: [pa, negs] })).toThrow(
      "argument 'options.positivesPerView[1]'",
    );
    tf.dispose([a, b, pa, pb, negs]);
    for (const r of [live, banked, queryOnly]) tf.dispose([r.value, ...Object.values(r.grads)]);
  });

  it('a few gradient-descent steps on the inputs lower every loss', () => {
    const losses: [string, (x: tf.Tensor2D, o: tf.Tensor2D) => tf.Tensor][] = [
      ...cases,
      ['invaSpreadLoss', (x, o) => invaSpreadLoss(x, o)],
    ];
    for (const [name, f] of losses) {
      const o = randn([3, 4], 31);
      const x = tf.tidy(() => tf.variable(randn([3, 4], 32)));
      const opt = tf.train.sgd(0.05);
      const before = value(tf.tidy(() => f(x, o)));
      for (let i = 0; i < 5; i++) {
        tf.tidy(() => {
          opt.minimize(() => f(x, o) as tf.Scalar, false, [x]);
        });
      }
      const after = value(tf.tidy(() => f(x, o)));
      expect(after, name).toBeLessThan(before);
      opt.dispose();
      tf.dispose([x, o]);
    }
  });
});

describeBackends('InfoNCE family: options and stability', () => {
  it('every option changes the result', () => {
    const a = randn([4, 6], 41, 3);
    const b = randn([4, 6], 42, 3);
    const negs = randn([5, 6], 43);
    const c = randn([4, 6], 44);
    const differ = (x: tf.Tensor, y: tf.Tensor, what: string): void => {
      expect(Math.abs(value(x) - value(y)), what).toBeGreaterThan(1e-4);
    };
    differ(ntXentLoss(a, b), ntXentLoss(a, b, { temperature: 0.1 }), 'ntXent temperature');
    differ(ntXentLoss(a, b), ntXentLoss(a, b, { normalize: false }), 'ntXent normalize');
    differ(infoNce(a, b), infoNce(a, b, { temperature: 0.5 }), 'infoNce temperature');
    differ(infoNce(a, b), infoNce(a, b, { normalize: false }), 'infoNce normalize');
    differ(infoNce(a, b), infoNce(a, b, { negatives: negs }), 'infoNce negatives');
    differ(infoNce(a, b), infoNce(a, b, { reduction: 'sum' }), 'infoNce reduction');
    differ(
      supConLoss(a, [0, 0, 1, 1]),
      supConLoss(a, [0, 0, 1, 1], { temperature: 0.5 }),
      'supCon temperature',
    );
    differ(
      supConLoss(a, [0, 0, 1, 1]),
      supConLoss(a, [0, 0, 1, 1], { normalize: false }),
      'supCon normalize',
    );
    differ(supConLoss(a, [0, 0, 1, 1]), supConLoss(a, [0, 1, 0, 1]), 'supCon labels');
    differ(mocoV3Loss(a, b), mocoV3Loss(a, b, { temperature: 1 }), 'mocoV3 temperature');
    differ(
      invaSpreadLoss(a, b),
      invaSpreadLoss(a, b, { temperature: 0.5 }),
      'invaSpread temperature',
    );
    differ(
      invaSpreadLoss(a, b),
      invaSpreadLoss(a, b, { normalize: false }),
      'invaSpread normalize',
    );
    differ(cmcLoss([a, b, c]), cmcLoss([a, b, c], { pairing: 'core' }), 'cmc pairing');
    differ(cmcLoss([a, b]), cmcLoss([a, b], { temperature: 0.5 }), 'cmc temperature');
    differ(cmcLoss([a, b]), cmcLoss([a, b], { normalize: false }), 'cmc normalize');
    differ(
      cmcLoss([a, b]),
      cmcLoss([a, b], { negativesPerView: [negs, negs] }),
      'cmc negativesPerView',
    );
    const p3 = tf.reshape(a, [2, 2, 6]) as tf.Tensor3D;
    const t3 = tf.reshape(b, [2, 2, 6]) as tf.Tensor3D;
    differ(cpcLoss(p3, t3), cpcLoss(p3, t3, { negatives: 'sameStep' }), 'cpc negatives');
    differ(cpcLoss(p3, t3), cpcLoss(p3, t3, { temperature: 0.5 }), 'cpc temperature');
    differ(cpcLoss(p3, t3), cpcLoss(p3, t3, { normalize: true }), 'cpc normalize');
    const logits = tf.tensor2d([
      [2, 1, 0],
      [0, 3, 1],
    ]);
    const pos = tf.tensor2d([
      [1, 1, 0],
      [0, 1, 0],
    ]);
    const valid = tf.tensor2d([
      [1, 1, 0],
      [1, 1, 1],
    ]);
    differ(
      maskedInfoNce(logits, pos),
      maskedInfoNce(logits, pos, { validMask: valid }),
      'maskedInfoNce validMask',
    );
    tf.dispose([a, b, negs, c, p3, t3, logits, pos, valid]);
  });

  it('temperature 0.01 on unnormalised inputs: finite losses and gradients everywhere', () => {
    const a = randn([4, 8], 51, 10);
    const b = randn([4, 8], 52, 10);
    const opts = { temperature: 0.01, normalize: false };
    const fns: [string, (x: tf.Tensor2D) => tf.Tensor][] = [
      ['ntXent', (x) => ntXentLoss(x, b, opts)],
      ['infoNce', (x) => infoNce(x, b, { ...opts, negatives: tf.neg(b) })],
      ['supCon', (x) => supConLoss(tf.concat([x, b]), [0, 1, 2, 3, 0, 1, 2, 3], opts)],
      ['invaSpread', (x) => invaSpreadLoss(x, b, opts)],
      ['cmc', (x) => cmcLoss([x, b], opts)],
      ['cpc', (x) => cpcLoss(x, b, opts)],
      ['mocoV3', (x) => mocoV3Loss(x, b, { temperature: 0.01 })],
    ];
    for (const [name, f] of fns) {
      const g = tf.grad((x: tf.Tensor) => f(x as tf.Tensor2D) as tf.Scalar)(a);
      expect(Number.isFinite(value(tf.tidy(() => f(a)))), `${name} loss`).toBe(true);
      expect(Array.from(g.dataSync()).every(Number.isFinite), `${name} gradient`).toBe(true);
      g.dispose();
    }
    tf.dispose([a, b]);
  });

  it('a row without positives is left out, and rows with no valid entry give no NaN', () => {
    const logits = tf.tensor2d([
      [2, 1, 0],
      [0, 3, 1],
      [5, 5, 5],
    ]);
    const pos = tf.tensor2d(
      [
        [1, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
      ],
      undefined,
      'bool',
    );
    const valid = tf.tensor2d(
      [
        [1, 1, 1],
        [1, 1, 1],
        [0, 0, 0],
      ],
      undefined,
      'bool',
    );
    const expected = Math.log(Math.exp(2) + Math.exp(1) + 1) - 2;
    expectClose(value(maskedInfoNce(logits, pos, { validMask: valid })), expected, 1e-5);
    const g = tf.grad(
      (x: tf.Tensor) => maskedInfoNce(x as tf.Tensor2D, pos, { validMask: valid }) as tf.Scalar,
    )(logits);
    expect(Array.from(g.dataSync()).every(Number.isFinite)).toBe(true);
    expect(Array.from(g.dataSync()).slice(3)).toEqual([0, 0, 0, 0, 0, 0]);
    tf.dispose([logits, pos, valid, g]);
  });
});

describeBackends('InfoNCE family: argument errors', () => {
  it('name the argument, the expectation and what came', () => {
    const a = tf.zeros([4, 8]) as tf.Tensor2D;
    const b = tf.zeros([4, 6]) as tf.Tensor2D;
    const one = tf.zeros([1, 8]) as tf.Tensor2D;
    const r3 = tf.zeros([2, 4, 8]) as unknown as tf.Tensor2D;
    expect(() => ntXentLoss(a, b)).toThrow(
      "ntXentLoss: argument 'z2' must be a float32 tensor of shape [4, 8] [N, D] like 'z1', but received a float32 tensor of shape [4, 6].",
    );
    expect(() => ntXentLoss(a, a, { temperature: 0 })).toThrow(
      "ntXentLoss: argument 'options.temperature' must be a finite number > 0, but received 0.",
    );
    expect(() => ntXentLoss(one, one)).toThrow("ntXentLoss: argument 'z1' must be at least 2 rows");
    expect(() => infoNce(r3, r3)).toThrow(
      "infoNce: argument 'query' must be a float32 tensor of rank 2 [N, D]",
    );
    expect(() => infoNce(a, a, { negatives: b })).toThrow(
      "infoNce: argument 'options.negatives' must be a float32 tensor of shape [*, 8]",
    );
    expect(() => infoNce(a, a, { negatives: [] })).toThrow(ContrastiveError);
    expect(() => infoNce(a, a, { reduction: 'avg' as 'mean' })).toThrow(
      "argument 'options.reduction' must be one of 'mean', 'sum', 'none'",
    );
    expect(() => infoNce(a, a, { normalize: 1 as unknown as boolean })).toThrow(
      "argument 'options.normalize' must be true or false",
    );
    expect(() => supConLoss(a, [0, 1, 2])).toThrow(
      "supConLoss: argument 'labels' must be a int32 tensor of shape [4] [N]",
    );
    expect(() => supConLoss(a, [0, 1, 2, 0.5])).toThrow(ContrastiveError);
    expect(() => cmcLoss([a])).toThrow(
      "cmcLoss: argument 'views' must be an array of at least 2 [N, D] tensors",
    );
    expect(() => cmcLoss([a, a], { negativesPerView: [a] })).toThrow(
      "argument 'options.negativesPerView' must be an array with one entry per view (2)",
    );
    expect(() => cpcLoss(a, b)).toThrow("cpcLoss: argument 'targets'");
    expect(() => maskedInfoNce(a, b)).toThrow(
      "maskedInfoNce: argument 'positiveMask' must be a tensor of the same shape as 'logits'",
    );
    tf.dispose([a, b, one, r3]);
  });
});
