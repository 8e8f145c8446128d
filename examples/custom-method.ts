/**
 * A custom method assembled from the library's primitives.
 *
 * The presets are thin compositions of parts you can use yourself. This example builds a method
 * that no preset is: BYOL's online network with its predictor, a slow (EMA) target encoder, and,
 * instead of BYOL's negative-free loss, an InfoNCE whose negatives come from a memory bank of past
 * keys (InstDisc's bank, read the way MoCo reads its queue). Every part is one import:
 * `byolProjector` / `byolPredictor` (layers), `cloneAsMomentumEncoder` / `emaUpdate` /
 * `cosineMomentum` / `MemoryBank` (state), `maskedInfoNce` and `stopGradient` (losses, core),
 * `multiCrop` + `smallImageRecipe` (augment). The comments say why each piece is there.
 *
 * Run:   npx tsx examples/custom-method.ts [--tiny] [--backend cpu|wasm|auto]
 * Takes: about 2 minutes on 2 cores (wasm); `--tiny` a few seconds.
 * Prints: the mean loss of every epoch (it falls once the bank holds real keys), and a kNN
 *   classifier's test accuracy on the encoder's features before and after (labels are used only
 *   for this evaluation). The last line is a JSON summary. Expect the loss to fall but the kNN
 *   accuracy to stay where it was in this one-minute run: methods with a slow target and stored
 *   negatives need hundreds of steps here (the README's benchmark: MoCo gains 3 points in about
 *   400 steps), and this example is about assembling the parts.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients (tfjs-core alone has none in Node)
import {
  MemoryBank,
  SeededRandom,
  cloneAsMomentumEncoder,
  cosineMomentum,
  emaUpdate,
  knnEvaluate,
  l2Normalize,
  maskedInfoNce,
  multiCrop,
  reestimateBatchNorm,
  selectBackend,
  smallImageRecipe,
  stopGradient,
  trainableVariables,
} from 'tfjs-contrastive';
import { byolPredictor, byolProjector, smallConvNet } from 'tfjs-contrastive/layers';
import { exampleArgs, fashionMnist } from './data.js';

const { tiny, backend } = exampleArgs();
tf.enableProdMode();
const info = await selectBackend(backend);
console.log(`backend ${info.name} (SIMD ${info.simd}, ${info.threads} threads)`);

const N = tiny ? 128 : 2560; // training images: each visited once per epoch
const EPOCHS = tiny ? 4 : 3;
const BATCH = tiny ? 32 : 128;
const NEGATIVES = tiny ? 128 : 1024; // bank entries drawn as negatives each step
const TEMPERATURE = 0.2; // MoCo v2's
const WIDTHS = tiny ? [8, 16, 32] : [32, 64, 128];
const DIM = 64; // projection and bank width
const data = fashionMnist({ train: N, test: tiny ? 200 : 1000 });
const stepsPerEpoch = Math.ceil(N / BATCH);
const totalSteps = EPOCHS * stepsPerEpoch;

// ---------------------------------------------------------------- networks
// Online: encoder f -> projector g -> predictor q (BYOL). The predictor makes the two branches
// asymmetric: the online side must *predict* the target's key rather than equal it, which BYOL
// and SimSiam found is what keeps such a pair of networks from collapsing.
const encoder = smallConvNet({ inputShape: [28, 28, 1], widths: WIDTHS, seed: 1 });
const featureDim = WIDTHS.at(-1)!;
const projector = byolProjector({
  inputDim: featureDim,
  hiddenDim: 2 * featureDim,
  outputDim: DIM,
  seed: 2,
});
const predictor = byolPredictor({
  inputDim: DIM,
  hiddenDim: 2 * featureDim,
  outputDim: DIM,
  seed: 3,
});
// Target: a copy of the encoder that follows it by an exponential moving average (MoCo's key
// encoder, BYOL's target). Its keys change slowly, so the bank's entries, written over many
// steps, stay comparable with each other. A choice of this method: the target reuses the online
// projector g instead of keeping an EMA copy of it (BYOL keeps one); the keys then live in the
// space g maps to now, and g gets its gradient through the online branch only (stopGradient
// below), never through the keys.
const targetEncoder = cloneAsMomentumEncoder(encoder);
// The optimiser trains the online networks only: trainableVariables lists their tf.Variables
// (tfjs-layers' `trainableWeights` are LayerVariables, which minimize cannot take). The target's
// weights are frozen by cloneAsMomentumEncoder and move only by emaUpdate.
const variables = trainableVariables(encoder, projector, predictor);
const optimizer = tf.train.adam(1e-3);

// ---------------------------------------------------------------- memory bank
// One unit vector per training image (InstDisc): after each step the batch's entries move
// halfway to the new keys, v <- normalise(0.5 v + 0.5 k). Entries start random, as in InstDisc,
// so the first epoch fills the bank and its loss is not comparable with the later ones.
const bank = new MemoryBank(N, DIM, { momentum: 0.5, seed: 4 });

// Two views per image. BYOL's asymmetric pair for small images: view 1 always blurred, view 2
// rarely blurred and sometimes solarised.
const recipe = smallImageRecipe(28, { channels: 1, asymmetric: true });

/**
 * InfoNCE of the predictions against their keys, with bank entries as the negatives, via the
 * general masked form: logits [B, 1 + K], column 0 the positive. A sample's own bank entry (an
 * older key of the same image) can be among the K random entries, with probability 1 - (1 - 1/N)^K,
 * about a third here; as a negative it would push the image away from itself (moco issue #146),
 * so `validMask` leaves it out of that row's softmax.
 */
function bankInfoNce(
  prediction: tf.Tensor2D,
  key: tf.Tensor2D,
  negativesT: tf.Tensor2D, // [D, K] unit bank entries, transposed once per step
  valid: tf.Tensor2D, // [B, K] false where the entry is the sample's own
): tf.Scalar {
  const p = l2Normalize(prediction);
  const positive = tf.sum(tf.mul(p, key), 1, true); // [B, 1] cosine with its key
  const negative = tf.matMul(p, negativesT); // [B, K]; a plain product (transposed ones are slow on wasm)
  const logits = tf.div(tf.concat([positive, negative], 1), TEMPERATURE) as tf.Tensor2D;
  const b = p.shape[0];
  const isPositive = tf.concat([tf.ones([b, 1], 'bool'), tf.zeros(valid.shape, 'bool')], 1);
  const validMask = tf.concat([tf.ones([b, 1], 'bool'), valid], 1);
  return maskedInfoNce(logits, isPositive as tf.Tensor2D, { validMask }) as tf.Scalar;
}

// ---------------------------------------------------------------- evaluation (labels only here)
async function knnAccuracy(): Promise<number> {
  // Inference-mode batch norm uses running statistics, which a short run leaves partly at their
  // start values: re-estimate them on clean images first.
  reestimateBatchNorm(encoder, data.trainImages, { maxImages: 2048 });
  const train = encoder.predict(data.trainImages, { batchSize: 256 }) as tf.Tensor2D;
  const test = encoder.predict(data.testImages, { batchSize: 256 }) as tf.Tensor2D;
  const { top1 } = await knnEvaluate(train, data.trainLabels, test, data.testLabels, { k: 20 });
  tf.dispose([train, test]);
  return top1;
}
const knnBefore = await knnAccuracy();
console.log(`before training: kNN accuracy ${(100 * knnBefore).toFixed(1)}%`);

// ---------------------------------------------------------------- training
const rng = new SeededRandom(0);
const epochLosses: number[] = [];
const started = performance.now();
let step = 0;
for (let epoch = 0; epoch < EPOCHS; epoch++) {
  // Each image once per epoch, so no index appears twice in a batch (a bank update with
  // duplicate indices keeps one of them).
  const order = rng.permutation(N);
  const losses: number[] = [];
  for (let start = 0; start < N; start += BATCH) {
    const indices = order.slice(start, Math.min(N, start + BATCH));
    const b = indices.length;
    if (b < 2) continue; // batch norm needs two samples
    const index = tf.tensor1d(indices, 'int32');
    const images = tf.gather(data.trainImages, index) as tf.Tensor4D;
    const [v1, v2] = multiCrop(images, { crops: recipe, rng }) as [tf.Tensor4D, tf.Tensor4D];
    // K random bank entries shared by the batch, read *before* this step's update (a batch must
    // not compare against its own fresh keys), normalised (the random initial entries are not)
    // and transposed once for both directions of the loss.
    const noise = bank.sampleNoise(NEGATIVES);
    const negativesT = tf.tidy(() => tf.transpose(l2Normalize(tf.gather(bank.value, noise))));
    const valid = tf.tidy(() =>
      tf.notEqual<tf.Tensor2D>(tf.reshape(index, [b, 1]), tf.reshape(noise, [1, NEGATIVES])),
    );

    let keys: tf.Tensor2D | undefined; // the step's target keys, kept for the bank update
    const loss = tf.tidy(() =>
      optimizer.minimize(
        () => {
          // Online branch, in training mode (batch norm with batch statistics, and it updates
          // its running averages). Both views in one batch: one pass, shared statistics.
          const both = tf.concat([v1, v2], 0);
          const p = predictor.apply(
            projector.apply(encoder.apply(both, { training: true }), { training: true }),
            { training: true },
          ) as tf.Tensor2D;
          // Target branch: the EMA encoder, then the (shared) online projector. stopGradient
          // makes the keys constants of the loss. Here it is required, not a formality: the
          // keys pass through g, whose variables are trained, and without it the loss would
          // also move g to bring the keys toward the predictions (the shortcut to a collapsed,
          // constant output that a stop-gradient blocks in BYOL and SimSiam). tfjs has no
          // torch.no_grad: everything in this closure is recorded for the backward pass.
          const k = stopGradient(
            l2Normalize(
              projector.apply(targetEncoder.apply(both, { training: true }), {
                training: true,
              }) as tf.Tensor2D,
            ),
          );
          const [p1, p2] = tf.split(p, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
          const [k1, k2] = tf.split(k, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
          keys = tf.keep(tf.add<tf.Tensor2D>(k1, k2)); // the bank renormalises the sum
          // Symmetric, as BYOL: each view predicts the other view's key.
          return tf.add(
            bankInfoNce(p1, k2, negativesT, valid),
            bankInfoNce(p2, k1, negativesT, valid),
          ) as tf.Scalar;
        },
        true,
        variables,
      )!,
    );
    // After the optimiser step: the target follows the online encoder (BYOL's momentum, 0.99
    // rising to 1 on a cosine; 'ignore': the target keeps its own batch-norm statistics, which
    // its training-mode passes do not use anyway), and the bank takes this step's keys.
    emaUpdate(targetEncoder, encoder, cosineMomentum(step, totalSteps, 0.99));
    bank.update(index, keys!);
    losses.push((await loss.data())[0]!);
    tf.dispose([index, images, v1, v2, noise, negativesT, valid, loss, keys!]);
    step++;
  }
  const mean = losses.reduce((a, x) => a + x, 0) / losses.length;
  epochLosses.push(mean);
  console.log(
    `epoch ${epoch + 1}/${EPOCHS}: mean loss ${mean.toFixed(3)} (first ${losses[0]!.toFixed(3)}, last ${losses.at(-1)!.toFixed(3)})${epoch === 0 ? ', the bank filling' : ''}`,
  );
}
const seconds = (performance.now() - started) / 1000;

const knnAfter = await knnAccuracy();
console.log(
  `after ${step} steps (${seconds.toFixed(1)} s): kNN accuracy ${(100 * knnAfter).toFixed(1)}% (before ${(100 * knnBefore).toFixed(1)}%)`,
);

data.dispose();
bank.dispose();
optimizer.dispose();
for (const model of [encoder, projector, predictor, targetEncoder]) model.dispose();
console.log(
  JSON.stringify({
    example: 'custom-method',
    backend: info.name,
    steps: step,
    epochLosses,
    knnBefore,
    knnAfter,
    seconds,
    tensorsLeft: tf.memory().numTensors,
  }),
);
