/**
 * Closed forms, invariants, stop-gradients, stability, options and errors of the Sinkhorn, SwAV,
 * DINO, BYOL and SimSiam parts, the DINO center and schedule, and the collapse monitors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  Center,
  ContrastiveError,
  byolLoss,
  dinoLoss,
  dinoTeacherTemperature,
  embeddingStd,
  negativeCosineSimilarity,
  simsiamLoss,
  sinkhorn,
  swavLoss,
  symmetricByolLoss,
  teacherEntropy,
  teacherStudentKl,
} from '../../src/index.js';
import { describeBackends, expectClose } from '../support/backends.js';

const value = (t: tf.Tensor): number => {
  const v = t.dataSync()[0] as number;
  t.dispose();
  return v;
};
const randn = (shape: [number, number], seed: number, scale = 1): tf.Tensor2D =>
  tf.tidy(() => tf.mul(tf.randomNormal<tf.Rank.R2>(shape, 0, 1, 'float32', seed), scale));

describeBackends('BYOL, SimSiam, negative cosine', ({ tol }) => {
  it('identical inputs give the closed forms (0, -1, -1)', () => {
    const x = randn([5, 8], 1);
    expectClose(value(byolLoss(x, x)), 0, tol, 'byol');
    expectClose(value(symmetricByolLoss(x, x, x, x)), 0, tol, 'symmetric byol');
    expectClose(value(simsiamLoss(x, x, x, x)), -1, tol, 'simsiam');
    expectClose(value(negativeCosineSimilarity(x, x)), -1, tol, 'negative cosine');
    const neg = tf.neg(x);
    expectClose(value(byolLoss(x, neg)), 4, tol, 'byol opposite = 4');
    tf.dispose([x, neg]);
  });

  it('targets carry no gradient in BYOL and SimSiam; the plain primitive differentiates both', () => {
    const [p1, p2, z1, z2] = [
      randn([3, 4], 2),
      randn([3, 4], 3),
      randn([3, 4], 4),
      randn([3, 4], 5),
    ];
    const g = tf.grads(
      (a: tf.Tensor, b: tf.Tensor) => byolLoss(a as tf.Tensor2D, b as tf.Tensor2D) as tf.Scalar,
    )([p1!, z1!]);
    expect(Array.from(g[1]!.dataSync()).every((v) => v === 0)).toBe(true);
    expect(Array.from(g[0]!.dataSync()).some((v) => v !== 0)).toBe(true);
    const s = tf.grads(
      (a: tf.Tensor, b: tf.Tensor) =>
        simsiamLoss(p1!, p2!, a as tf.Tensor2D, b as tf.Tensor2D) as tf.Scalar,
    )([z1!, z2!]);
    expect(s.every((t) => Array.from(t.dataSync()).every((v) => v === 0))).toBe(true);
    const n = tf.grads(
      (a: tf.Tensor, b: tf.Tensor) =>
        negativeCosineSimilarity(a as tf.Tensor2D, b as tf.Tensor2D) as tf.Scalar,
    )([p1!, z1!]);
    expect(Array.from(n[1]!.dataSync()).some((v) => v !== 0)).toBe(true);
    tf.dispose([p1!, p2!, z1!, z2!, ...g, ...s, ...n]);
  });

  it("reduction 'none' gives one value per sample, 'sum' N times the mean", () => {
    const [a, b] = [randn([4, 6], 6), randn([4, 6], 7)];
    const none = byolLoss(a, b, { reduction: 'none' });
    expect(none.shape).toEqual([4]);
    expectClose(value(tf.sum(none)), value(byolLoss(a, b, { reduction: 'sum' })), tol);
    expectClose(
      value(simsiamLoss(a, b, b, a, { reduction: 'sum' })),
      4 * value(simsiamLoss(a, b, b, a)),
      tol,
    );
    tf.dispose([a, b, none]);
  });

  it('gradient descent on the predictions lowers the loss', () => {
    const z = randn([4, 8], 8);
    const p = tf.tidy(() => tf.variable(randn([4, 8], 9)));
    const opt = tf.train.sgd(0.5);
    const before = value(byolLoss(p, z));
    for (let i = 0; i < 5; i++)
      tf.tidy(() => void opt.minimize(() => byolLoss(p, z) as tf.Scalar, false, [p]));
    expect(value(byolLoss(p, z))).toBeLessThan(before);
    opt.dispose();
    tf.dispose([z, p]);
  });

  it('rejects mismatched shapes', () => {
    const [a, b] = [tf.zeros([4, 6]) as tf.Tensor2D, tf.zeros([4, 5]) as tf.Tensor2D];
    expect(() => byolLoss(a, b)).toThrow(
      "byolLoss: argument 'z' must be a tensor of the same shape as 'p' ([4, 6])",
    );
    expect(() => simsiamLoss(a, a, a, b)).toThrow("simsiamLoss: argument 'z2'");
    const r1 = tf.zeros([4]) as unknown as tf.Tensor2D;
    expect(() => negativeCosineSimilarity(a, r1)).toThrow(ContrastiveError);
    tf.dispose([a, b, r1]);
  });
});

describeBackends('sinkhorn and swavLoss', ({ tol }) => {
  it('codes: rows sum to 1, prototypes share the mass equally, no gradient', () => {
    const s = randn([12, 4], 10, 0.3);
    const q = sinkhorn(s, { iterations: 50 });
    tf.tidy(() => {
      expectClose(tf.sum(q, 1), new Array<number>(12).fill(1), 1e-4, 'rows');
      expectClose(tf.sum(q, 0), new Array<number>(4).fill(3), 1e-2, 'columns (B / K each)');
    });
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(sinkhorn(x as tf.Tensor2D), x)))(s);
    // d/dx sum(Q * x) with Q constant is Q itself.
    const q3 = sinkhorn(s);
    expectClose(g, q3, tol, 'gradient sees Q as a constant');
    tf.dispose([s, q, q3, g]);
  });

  it('stays finite and exact when scores / epsilon spread beyond float32 exp (> 87)', () => {
    const s = tf.tensor2d([
      [1, -1, 0.5],
      [-1, 1, 0],
      [0.2, 0.3, -1],
      [1, 1, -1],
    ]);
    const logQ = sinkhorn(s, { epsilon: 0.005 }); // spread / eps = 400
    const values = Array.from(logQ.dataSync());
    expect(values.every(Number.isFinite)).toBe(true);
    const mild = randn([6, 5], 11, 0.5);
    tf.tidy(() => {
      expectClose(tf.sum(logQ, 1), [1, 1, 1, 1], 1e-4, 'rows');
      // The plain algorithm agrees where nothing underflows.
      expectClose(sinkhorn(mild, { logDomain: false }), sinkhorn(mild), 1e-4, 'log domain = plain');
    });
    tf.dispose([s, logQ, mild]);
  });

  it('every option changes the result, and the queue joins only the codes', () => {
    const crops = [0, 1, 2, 3].map((i) => randn([4, 6], 20 + i, 0.5));
    const queue = [randn([5, 6], 30, 0.5), randn([5, 6], 31, 0.5)];
    const base = value(swavLoss(crops));
    const differ = (v: number, what: string): void => {
      expect(Math.abs(v - base), what).toBeGreaterThan(1e-5);
    };
    differ(value(swavLoss(crops, { temperature: 0.2 })), 'temperature');
    differ(value(swavLoss(crops, { epsilon: 0.1 })), 'epsilon');
    differ(value(swavLoss(crops, { iterations: 1 })), 'iterations');
    differ(value(swavLoss(crops, { assignCrops: [0] })), 'assignCrops');
    differ(value(swavLoss(crops, { queueScoresPerCrop: queue })), 'queue');
    tf.dispose([...crops, ...queue]);
  });

  it('gradient descent on the crop scores lowers the loss', () => {
    const vars = [0, 1, 2].map((i) => tf.tidy(() => tf.variable(randn([4, 6], 40 + i, 0.5))));
    const opt = tf.train.sgd(0.5);
    const f = (): tf.Scalar => swavLoss(vars) as tf.Scalar;
    const before = value(f());
    for (let i = 0; i < 5; i++) tf.tidy(() => void opt.minimize(f, false, vars));
    expect(value(f())).toBeLessThan(before);
    opt.dispose();
    tf.dispose(vars);
  });

  it('rejects bad crops and options', () => {
    const a = tf.zeros([4, 6]) as tf.Tensor2D;
    const b = tf.zeros([4, 5]) as tf.Tensor2D;
    expect(() => swavLoss([a])).toThrow(
      "swavLoss: argument 'scoresPerCrop' must be an array of at least 2",
    );
    expect(() => swavLoss([a, b])).toThrow(
      "argument 'scoresPerCrop[1]' must be a float32 tensor of shape [4, 6]",
    );
    expect(() => swavLoss([a, a], { assignCrops: [2] })).toThrow(
      "argument 'options.assignCrops[0]' must be an integer >= 0 and <= 1",
    );
    expect(() => swavLoss([a, a], { assignCrops: [0, 0] })).toThrow('distinct');
    expect(() => swavLoss([a, a], { queueScoresPerCrop: [a] })).toThrow(
      "argument 'options.queueScoresPerCrop'",
    );
    expect(() => sinkhorn(a, { epsilon: 0 })).toThrow(
      "sinkhorn: argument 'options.epsilon' must be a finite number > 0",
    );
    expect(() => sinkhorn(a, { iterations: 0 })).toThrow(ContrastiveError);
    tf.dispose([a, b]);
  });
});

describeBackends('dinoLoss, Center, schedule and monitors', ({ tol }) => {
  it('one pair: the loss is teacher entropy + KL(teacher || student)', () => {
    const [s0, s1, t0] = [randn([5, 7], 50, 2), randn([5, 7], 51, 2), randn([5, 7], 52, 2)];
    const c = tf.tidy(() => tf.reshape(randn([1, 7], 53, 0.3), [7]));
    const loss = value(dinoLoss([s0!, s1!], [t0!], c));
    const h = value(teacherEntropy(t0!, c));
    const kl = value(teacherStudentKl(t0!, s1!, c));
    expectClose(loss, h + kl, tol);
    expect(kl).toBeGreaterThan(0);
    tf.dispose([s0!, s1!, t0!, c]);
  });

  it('a uniform teacher and student give log K, the collapse plateau', () => {
    const k = 16;
    const t = tf.ones([4, k]) as tf.Tensor2D;
    const c = tf.zeros([k]);
    expectClose(value(dinoLoss([t, t, t], [t, t], c)), Math.log(k), tol);
    expectClose(value(teacherEntropy(t, c)), Math.log(k), tol);
    tf.dispose([t, c]);
  });

  it('teacher outputs and center get no gradient; every temperature matters', () => {
    const [s0, s1, t0, t1] = [54, 55, 56, 57].map((i) => randn([3, 5], i, 2));
    const c = tf.zeros([5]);
    const g = tf.grads(
      (a: tf.Tensor, b: tf.Tensor) =>
        dinoLoss([s0!, s1!], [a as tf.Tensor2D, b as tf.Tensor2D], c) as tf.Scalar,
    )([t0!, t1!]);
    expect(g.every((x) => Array.from(x.dataSync()).every((v) => v === 0))).toBe(true);
    const base = value(dinoLoss([s0!, s1!], [t0!, t1!], c));
    expect(
      Math.abs(value(dinoLoss([s0!, s1!], [t0!, t1!], c, { studentTemperature: 0.2 })) - base),
    ).toBeGreaterThan(1e-4);
    expect(
      Math.abs(value(dinoLoss([s0!, s1!], [t0!, t1!], c, { teacherTemperature: 0.07 })) - base),
    ).toBeGreaterThan(1e-4);
    const shifted = tf.tensor1d([1, 0, 0, 0, 0]);
    expect(Math.abs(value(dinoLoss([s0!, s1!], [t0!, t1!], shifted)) - base)).toBeGreaterThan(1e-4);
    tf.dispose([s0!, s1!, t0!, t1!, c, shifted, ...g]);
  });

  it('Center: momentum update from zero, save and restore give identical results', async () => {
    const center = new Center(3, { momentum: 0.9 });
    const t = tf.tensor2d([
      [1, 2, 3],
      [3, 2, 1],
    ]);
    center.update(t);
    expectClose(await center.value.data(), [0.2, 0.2, 0.2], tol);
    center.update([t, t]);
    expectClose(await center.value.data(), [0.38, 0.38, 0.38], tol);
    const state = center.getState();
    expect(state.config).toEqual({ momentum: 0.9, dim: 3 });
    expectClose(await state.tensors.value!.data(), [0.38, 0.38, 0.38], tol);
    const restored = Center.fromState(state);
    tf.dispose(Object.values(state.tensors)); // the caller's: the restored center holds a copy
    center.update(t);
    restored.update(t);
    expectClose(await restored.value.data(), await center.value.data(), 0);
    const wrong = tf.zeros([2, 4]) as tf.Tensor2D;
    expect(() => {
      center.update(wrong);
    }).toThrow("Center.update: argument 'teacherOutputs' must be a float32 tensor of shape [*, 3]");
    expect(() => new Center(3, { momentum: 1 })).toThrow(
      "Center: argument 'options.momentum' must be a finite number >= 0 and < 1",
    );
    expect(() => Center.fromState({ momentum: 0.9, values: [] } as never)).toThrow(
      "Center.fromState: argument 'state.config' must be an object of JSON values",
    );
    const value = tf.zeros([3]);
    expect(() =>
      Center.fromState({ config: { momentum: 0.9, dim: 4 }, tensors: { value } }),
    ).toThrow(
      "Center.fromState: argument 'state.tensors.value' must be a float32 tensor of shape [4] [dim] (the center), but received a float32 tensor of shape [3].",
    );
    expect(() => Center.fromState({ config: { momentum: 1, dim: 3 }, tensors: { value } })).toThrow(
      "Center.fromState: argument 'state.config.momentum'",
    );
    expect(() => Center.fromState({ config: { momentum: 0.9 }, tensors: { value } })).toThrow(
      ContrastiveError,
    );
    tf.dispose([t, wrong, value]);
    center.dispose();
    restored.dispose();
  });

  it('dinoTeacherTemperature is np.linspace(0.04, 0.07, 30) then 0.07', () => {
    expect(dinoTeacherTemperature(0)).toBeCloseTo(0.04, 12);
    expect(dinoTeacherTemperature(29)).toBeCloseTo(0.07, 12);
    expect(dinoTeacherTemperature(30)).toBe(0.07);
    expect(dinoTeacherTemperature(100)).toBe(0.07);
    expect(dinoTeacherTemperature(10)).toBeCloseTo(0.04 + (0.03 * 10) / 29, 12);
    expect(dinoTeacherTemperature(5, { warmupEpochs: 0 })).toBe(0.07);
    // Fractional epochs interpolate and never pass the end (29.5 gave 0.0705 before).
    expect(dinoTeacherTemperature(10.5)).toBeCloseTo(0.04 + (0.03 * 10.5) / 29, 12);
    for (const e of [28.5, 28.99, 29, 29.5, 29.999]) {
      expect(dinoTeacherTemperature(e), `epoch ${e}`).toBeLessThanOrEqual(0.07);
    }
    expect(dinoTeacherTemperature(29.5)).toBe(0.07);
    // Decreasing schedules stop at their end too.
    expect(dinoTeacherTemperature(9.5, { start: 0.1, end: 0.05, warmupEpochs: 10 })).toBe(0.05);
    expect(() => dinoTeacherTemperature(-1)).toThrow("dinoTeacherTemperature: argument 'epoch'");
  });

  it('embeddingStd: 0 when collapsed, about 1/sqrt(D) when spread over the sphere', () => {
    const d = 16;
    const collapsed = tf.tidy(() => tf.tile(randn([1, d], 60), [64, 1])) as tf.Tensor2D;
    expectClose(value(embeddingStd(collapsed)), 0, 1e-3);
    const spread = randn([4000, d], 61);
    expect(Math.abs(value(embeddingStd(spread)) * Math.sqrt(d) - 1)).toBeLessThan(0.05);
    tf.dispose([collapsed, spread]);
  });

  it('rejects a center of the wrong size and crops of other shapes', () => {
    const s = tf.zeros([2, 4]) as tf.Tensor2D;
    const c = tf.zeros([3]);
    expect(() => dinoLoss([s, s], [s], c)).toThrow(
      "dinoLoss: argument 'center' must be a float32 tensor of shape [4]",
    );
    const c4 = tf.zeros([4]);
    const s5 = tf.zeros([2, 5]) as tf.Tensor2D;
    expect(() => dinoLoss([s], [s], c4)).toThrow(
      "dinoLoss: argument 'teacherOutputsPerGlobalCrop'",
    );
    expect(() => dinoLoss([s, s5], [s], c)).toThrow("argument 'studentOutputsPerCrop[1]'");
    tf.dispose([s, c, c4, s5]);
  });
});
