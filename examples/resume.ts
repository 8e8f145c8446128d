/**
 * Save, load and resume a training run, and check that the resumed run is the uninterrupted one.
 *
 * A preset's checkpoint (`save`, or `fit`'s `checkpoint` option) is one safetensors file with the
 * whole training state: every network, batch-norm statistics, the optimiser's slots, the step
 * counter and the random generators (augmentation, data order). This example trains SimCLR three
 * ways on the same batches of Fashion-MNIST:
 *
 *   A. uninterrupted, for all the steps;
 *   B. the same run, stopped halfway, with `fit` writing checkpoints; then thrown away;
 *   C. a new preset (built with other seeds and another initial encoder, which the checkpoint
 *      replaces) that loads B's checkpoint and trains the remaining steps;
 *
 * and compares C's losses and final weights with A's. The library documents save -> load ->
 * continue as bit-identical on the cpu backend with its default optimiser; this prints what it
 * measures on the backend it runs on.
 *
 * One thing to know: `fit` plans the run it is given. Its learning-rate schedule (warm-up, then a
 * cosine to 0) spans that call's steps, counted from the step it starts at, so calling `fit` again
 * on the resumed preset would start a new warm-up and cosine over the remaining steps. To continue
 * the original schedule, build the preset with `totalSteps` (the original run's length) and call
 * `trainStep`. D below shows the difference.
 *
 * Run:   npx tsx examples/resume.ts [--tiny] [--backend cpu|wasm|auto]
 * Takes: about 1.5 minutes (75 training steps) on 2 cores (wasm); `--tiny` a few seconds.
 * Prints: the losses of A and C side by side after the resume point, whether they and the final
 *   weights are bit-identical, and the same for D. The last line is a JSON summary.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { SeededRandom, selectBackend } from 'tfjs-contrastive';
import { smallConvNet } from 'tfjs-contrastive/layers';
import { simclr, type SimCLR } from 'tfjs-contrastive/methods';
import { exampleArgs, fashionMnist } from './data.js';

const { tiny, backend } = exampleArgs();
tf.enableProdMode();
const info = await selectBackend(backend);
console.log(`backend ${info.name} (SIMD ${info.simd}, ${info.threads} threads)`);

const STEPS = tiny ? 6 : 30;
const STOP_AT = STEPS / 2; // where run B is interrupted
const BATCH = tiny ? 32 : 96;
const WIDTHS = tiny ? [8, 16, 32] : [32, 64, 128];
const data = fashionMnist({ train: STEPS * BATCH, test: 1 });

// The data, as a fixed list of batches: each run sees batch i at step i. (`fit` also takes one
// tensor of images and shuffles it with the preset's seeded generator, which the checkpoint
// restores; a fixed list keeps this example's comparison independent of where an epoch ends.)
const order = new SeededRandom(0).permutation(STEPS * BATCH);
const batches = Array.from({ length: STEPS }, (_, i) =>
  tf.tidy(
    () =>
      tf.gather(
        data.trainImages,
        tf.tensor1d(order.slice(i * BATCH, (i + 1) * BATCH), 'int32'),
      ) as tf.Tensor4D,
  ),
);
data.dispose();

/** A SimCLR preset around a new encoder; the weights' seed and the preset's seed vary by run. */
function build(seed: number, totalSteps?: number): SimCLR {
  const encoder = smallConvNet({ inputShape: [28, 28, 1], widths: WIDTHS, seed });
  // disposeEncoder: the preset owns the encoder, so dispose() frees everything of a run.
  return simclr({ encoder, seed, disposeEncoder: true, ...(totalSteps ? { totalSteps } : {}) });
}

/** Every weight of the preset's networks (encoder, projection head), as flat arrays. */
async function weightsOf(method: SimCLR): Promise<Float32Array[]> {
  const tensors = [...method.encoder.getWeights(), ...method.projector.getWeights()];
  return Promise.all(tensors.map(async (t) => (await t.data()) as Float32Array));
}

/** How many weight values differ, and the largest difference. */
function compare(a: Float32Array[], b: Float32Array[]): { differing: number; maxDiff: number } {
  let differing = 0;
  let maxDiff = 0;
  a.forEach((wa, i) => {
    const wb = b[i]!;
    for (let j = 0; j < wa.length; j++) {
      if (!Object.is(wa[j], wb[j])) differing++;
      maxDiff = Math.max(maxDiff, Math.abs(wa[j]! - wb[j]!));
    }
  });
  return { differing, maxDiff };
}

const dir = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-resume-'));
const checkpoint = join(dir, 'simclr.safetensors');
const started = performance.now();

// ---------------------------------------------------------------- A: uninterrupted
const a = build(1);
const runA = await a.fit(batches, { epochs: 1, progress: false });
console.log(`A: ${runA.steps} steps uninterrupted`);
const weightsA = await weightsOf(a);

// ---------------------------------------------------------------- B: interrupted halfway
// The same run (same seeds), with a checkpoint every few steps; a callback stops it after step
// STOP_AT, as a Ctrl-C handler or a job's time limit would. fit also saves when it ends.
const b = build(1);
const runB = await b.fit(batches, {
  epochs: 1,
  progress: false,
  checkpoint: { target: checkpoint, everySteps: Math.max(1, Math.floor(STOP_AT / 2)) },
  callbacks: { onBatchEnd: (step) => step < STOP_AT }, // false: stop after this step
});
console.log(
  `B: stopped after step ${b.step} (${runB.stoppedBy}); checkpoint ${checkpoint} (${(statSync(checkpoint).size / 1024).toFixed(0)} KiB)`,
);
b.dispose(); // the interrupted process is gone; only the file remains

// ---------------------------------------------------------------- C: a new preset resumes
// Other seeds and other initial weights: the checkpoint must replace all of them. totalSteps is
// the original run's length, so the schedule continues where B's stopped.
const c = build(99, STEPS);
await c.load(checkpoint);
console.log(`C: loaded the checkpoint at step ${c.step}; training steps ${c.step + 1}..${STEPS}`);
const lossesC: number[] = [];
for (const images of batches.slice(c.step)) lossesC.push((await c.trainStep({ images })).loss);
const weightsC = await weightsOf(c);

// ---------------------------------------------------------------- D: resumed with fit instead
const d = build(99);
await d.load(checkpoint);
const runD = await d.fit(batches.slice(d.step), { epochs: 1, progress: false });
const weightsD = await weightsOf(d);
const seconds = (performance.now() - started) / 1000;

// ---------------------------------------------------------------- the comparison
const tailA = runA.losses.slice(STOP_AT);
console.log('step   A (uninterrupted)   C (resumed)         D (resumed with fit)');
tailA.forEach((lossA, i) => {
  const mark = (x: number | undefined): string =>
    `${(x ?? Number.NaN).toFixed(6)}${x === lossA ? ' =' : ' !'}`.padEnd(20);
  console.log(
    `${String(STOP_AT + i + 1).padStart(4)}   ${lossA.toFixed(6).padEnd(20)}${mark(lossesC[i])}${mark(runD.losses[i])}`,
  );
});
const lossesEqualC = tailA.length === lossesC.length && tailA.every((x, i) => x === lossesC[i]);
const lossesEqualD =
  tailA.length === runD.losses.length && tailA.every((x, i) => x === runD.losses[i]);
const weightsCvsA = compare(weightsA, weightsC);
const weightsDvsA = compare(weightsA, weightsD);
const total = weightsA.reduce((n, w) => n + w.length, 0);
console.log(
  `C vs A: losses ${lossesEqualC ? 'bit-identical' : 'differ'}; weights: ${weightsCvsA.differing} of ${total} values differ (max |diff| ${weightsCvsA.maxDiff.toExponential(2)})`,
);
console.log(
  `D vs A: losses ${lossesEqualD ? 'bit-identical' : 'differ'}; weights: ${weightsDvsA.differing} of ${total} values differ (max |diff| ${weightsDvsA.maxDiff.toExponential(2)}): fit planned a new schedule`,
);

for (const m of [a, c, d]) m.dispose();
tf.dispose(batches);
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    example: 'resume',
    backend: info.name,
    steps: STEPS,
    resumedAt: STOP_AT,
    stoppedBy: runB.stoppedBy,
    lossesA: runA.losses,
    lossesC,
    lossesD: runD.losses,
    lossesEqual: lossesEqualC,
    weightsDiffering: weightsCvsA.differing,
    weightsMaxDiff: weightsCvsA.maxDiff,
    fitResumeLossesEqual: lossesEqualD,
    seconds,
    tensorsLeft: tf.memory().numTensors,
  }),
);
