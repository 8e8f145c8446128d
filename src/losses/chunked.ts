import * as tf from '@tensorflow/tfjs-core';

/**
 * @internal The columns (keys) of a chunked logSumExp: either one [M, D] tensor that receives
 * gradient (in-batch keys, NT-Xent's and SupCon's own embeddings), or constant [k_i, D] row
 * blocks, optionally with the same blocks as [D, k_i] columns (a queue's `negatives()`), which
 * receive none (queue and memory-bank entries).
 */
export type ChunkedKeys =
  | { readonly trainable: tf.Tensor2D }
  | {
      readonly rows: readonly tf.Tensor2D[];
      readonly columns?: readonly tf.Tensor2D[];
    };

/** @internal SupCon's positives: same label, not the anchor itself, each weighted 1 / count. */
export interface ChunkedPositives {
  /** [N] int32 labels of the anchors, which are also the keys (M = N). */
  readonly labels: tf.Tensor1D;
  /** [N] float32 1 / max(count_i, 1), count_i the number of positives of anchor i. */
  readonly invCount: tf.Tensor1D;
}

/** @internal How {@link chunkedLogSumExp} walks and masks the columns. */
export interface ChunkedOptions {
  /** At most this many columns per chunk; chunks never span two constant blocks. */
  readonly chunkSize: number;
  /** Leave out column i of row i (the keys are the anchors' own set, M = N). */
  readonly excludeSelf?: boolean;
  /** Subtract the mean positive logit of each row (SupCon); implies M = N. */
  readonly positives?: ChunkedPositives;
}

interface Chunk {
  /** Index of the block (0 for trainable keys). */
  readonly block: number;
  /** First row of the chunk inside its block. */
  readonly start: number;
  /** First column of the chunk among all M columns. */
  readonly offset: number;
  readonly size: number;
}

function planChunks(blockSizes: readonly number[], chunkSize: number): Chunk[] {
  const chunks: Chunk[] = [];
  let offset = 0;
  blockSizes.forEach((k, block) => {
    for (let start = 0; start < k; start += chunkSize) {
      const size = Math.min(chunkSize, k - start);
      chunks.push({ block, start, offset: offset + start, size });
    }
    offset += k;
  });
  return chunks;
}

/** Row r of a [k, D] block, or the block itself when the chunk is all of it. */
function rowSlice(block: tf.Tensor2D, c: Chunk): tf.Tensor2D {
  return c.start === 0 && c.size === block.shape[0]
    ? block
    : tf.slice(block, [c.start, 0], [c.size, -1]);
}

function columnSlice(block: tf.Tensor2D, c: Chunk): tf.Tensor2D {
  return c.start === 0 && c.size === block.shape[1]
    ? block
    : tf.slice(block, [0, c.start], [-1, c.size]);
}

// The lowest finite float32: the running maximum starts there instead of at -Infinity, so that a
// chunk in which a row has no candidate at all (its self column alone) never computes
// -Infinity - (-Infinity).
const LOWEST = -3.4028234663852886e38;

/** Whether column j of chunk `c` is row i's own entry, as an [N, size] boolean. */
function selfMask(n: number, c: Chunk): tf.Tensor2D {
  return tf.tidy(() =>
    tf.equal<tf.Tensor2D>(
      tf.reshape(tf.range(0, n, 1, 'int32'), [n, 1]),
      tf.reshape(tf.range(c.offset, c.offset + c.size, 1, 'int32'), [1, c.size]),
    ),
  );
}

/**
 * @internal Per row i of `anchors` [N, D], `logSumExp_j (a_i . key_j)` over the M keys, minus,
 * with `positives`, `sum_j w_ij a_i . key_j` (w_ij = [label_j = label_i, j != i] / count_i): the
 * InfoNCE family's denominators in O(N x chunkSize) memory instead of O(N x M).
 *
 * Forward: one chunk of columns at a time, an online logSumExp (running row maximum and running
 * sum of exp, rescaled when the maximum grows), so no [N, M] matrix exists. Backward (a
 * `tf.customGrad`): each chunk's logits are recomputed rather than kept, the softmax is
 * `exp(logit - lse)`, and the anchors' gradient `dy (P - W) keys` (and the trainable keys'
 * `(P - W)^T dy anchors`) is accumulated chunk by chunk. Constant keys get no gradient; excluded
 * entries are -Infinity (probability and gradient 0), as in the unchunked losses. Every product is
 * a plain one (explicit transposes: transposed products are slow on wasm).
 */
export function chunkedLogSumExp(
  anchors: tf.Tensor2D,
  keys: ChunkedKeys,
  options: ChunkedOptions,
): tf.Tensor1D {
  const { chunkSize, excludeSelf = false, positives } = options;
  const n = anchors.shape[0];
  const trainable = 'trainable' in keys ? keys.trainable : undefined;
  const rowBlocks = trainable === undefined ? [...(keys as { rows: tf.Tensor2D[] }).rows] : [];
  const columnBlocks =
    trainable === undefined ? [...((keys as { columns?: tf.Tensor2D[] }).columns ?? [])] : [];
  const blockSizes =
    trainable === undefined ? rowBlocks.map((b) => b.shape[0]) : [trainable.shape[0]];
  const chunks = planChunks(blockSizes, chunkSize);

  // The [N, size] logits of one chunk, and its rows ([size, D]) for the backward products.
  // `rows` / `columns` are the (saved) blocks in the pass that calls it.
  const logitsOf = (
    a: tf.Tensor2D,
    c: Chunk,
    rows: readonly tf.Tensor2D[],
    columns: readonly tf.Tensor2D[],
  ): { logits: tf.Tensor2D; keyRows: tf.Tensor2D } => {
    const keyRows = rowSlice(rows[c.block] as tf.Tensor2D, c);
    const keyColumns =
      columns.length > 0
        ? columnSlice(columns[c.block] as tf.Tensor2D, c)
        : tf.transpose<tf.Tensor2D>(keyRows);
    return { logits: tf.matMul(a, keyColumns), keyRows };
  };
  // Row i's weights on the chunk's columns: 1 / count_i on its positives, 0 elsewhere.
  const weightsOf = (c: Chunk, labels: tf.Tensor1D, invCount: tf.Tensor1D): tf.Tensor2D =>
    tf.tidy(() => {
      const same = tf.equal(
        tf.reshape(labels, [n, 1]),
        tf.reshape(tf.slice(labels, [c.offset], [c.size]), [1, c.size]),
      );
      const positive = tf.logicalAnd(same, tf.logicalNot(selfMask(n, c)));
      return tf.mul<tf.Tensor2D>(tf.cast(positive, 'float32'), tf.reshape(invCount, [n, 1]));
    });
  const excluded = (logits: tf.Tensor2D, c: Chunk): tf.Tensor2D =>
    excludeSelf ? tf.where<tf.Tensor2D>(selfMask(n, c), -Infinity, logits) : logits;

  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const a = args[0] as tf.Tensor2D;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const rows = trainable === undefined ? rowBlocks : [args[1] as tf.Tensor2D];
    let m: tf.Tensor2D = tf.fill([n, 1], LOWEST);
    let s: tf.Tensor2D = tf.zeros([n, 1]);
    let positiveSum: tf.Tensor2D | undefined =
      positives === undefined ? undefined : tf.zeros([n, 1]);
    for (const c of chunks) {
      const next = tf.tidy(() => {
        const { logits: raw } = logitsOf(a, c, rows, columnBlocks);
        const ps =
          positives === undefined || positiveSum === undefined
            ? undefined
            : tf.add<tf.Tensor2D>(
                positiveSum,
                tf.sum(tf.mul(weightsOf(c, positives.labels, positives.invCount), raw), 1, true),
              );
        const logits = excluded(raw, c);
        const mNew = tf.maximum<tf.Tensor2D>(m, tf.max(logits, 1, true));
        // Freed as soon as the next pass has read them: two [N, size] buffers at a time.
        const shifted = tf.sub(logits, mNew);
        tf.dispose([raw, logits]);
        const e = tf.exp(shifted);
        shifted.dispose();
        const chunkSum = tf.sum(e, 1, true);
        e.dispose();
        const sNew = tf.add<tf.Tensor2D>(tf.mul(s, tf.exp(tf.sub(m, mNew))), chunkSum);
        return ps === undefined ? [mNew, sNew] : [mNew, sNew, ps];
      });
      tf.dispose([m, s, ...(positiveSum === undefined ? [] : [positiveSum])]);
      [m, s, positiveSum] = next as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D | undefined];
    }
    const lse = tf.add<tf.Tensor2D>(m, tf.log(s));
    save([
      a,
      // Saved, not captured: the blocks may be intermediates (normalised negatives) that the
      // caller's tidy disposes, or a queue's blocks that an enqueue replaces, before the backward
      // pass. Saving copies them on wasm (its Identity kernel copies), so only the rows are
      // saved: the backward pass transposes each chunk of rows (O(chunk x D)) instead.
      ...(trainable === undefined ? rowBlocks : [args[1] as tf.Tensor2D]),
      lse,
      ...(positives === undefined ? [] : [positives.labels, positives.invCount]),
    ]);
    const value = tf.reshape(positiveSum === undefined ? lse : tf.sub(lse, positiveSum), [n]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const sa = saved[0] as tf.Tensor2D;
        let at = 1;
        const take = (count: number): tf.Tensor2D[] => {
          const out = saved.slice(at, at + count) as tf.Tensor2D[];
          at += count;
          return out;
        };
        const sRows = take(trainable === undefined ? rowBlocks.length : 1);
        const sLse = take(1)[0] as tf.Tensor2D;
        const [sLabels, sInvCount] = take(positives === undefined ? 0 : 2) as unknown as [
          tf.Tensor1D?,
          tf.Tensor1D?,
        ];
        const dyColumn = tf.reshape(dy, [n, 1]);
        // The trainable keys' gradient (P - W)^T (dy a), chunk by chunk ([size, D] each).
        const scaledAnchors = trainable === undefined ? undefined : tf.mul(dyColumn, sa);
        let acc: tf.Tensor2D = tf.zerosLike(sa);
        const keyGrads: tf.Tensor2D[] = [];
        for (const c of chunks) {
          const out: tf.Tensor2D[] = tf.tidy(() => {
            const { logits, keyRows } = logitsOf(sa, c, sRows, []);
            const candidates = excluded(logits, c);
            const shifted = tf.sub(candidates, sLse);
            tf.dispose([logits, candidates]);
            let g = tf.exp(shifted) as tf.Tensor2D;
            shifted.dispose();
            if (sLabels !== undefined && sInvCount !== undefined) {
              const p = g;
              g = tf.sub(p, weightsOf(c, sLabels, sInvCount));
              p.dispose();
            }
            const sum = tf.add<tf.Tensor2D>(acc, tf.matMul(g, keyRows));
            return scaledAnchors === undefined
              ? [sum]
              : [sum, tf.matMul(tf.transpose<tf.Tensor2D>(g), scaledAnchors)];
          });
          acc.dispose();
          acc = out[0] as tf.Tensor2D;
          const keyGrad = out[1];
          if (keyGrad !== undefined) keyGrads.push(keyGrad);
        }
        const anchorGrad = tf.mul(dyColumn, acc);
        if (trainable === undefined) return anchorGrad;
        return [anchorGrad, tf.concat(keyGrads, 0)];
      },
    };
  });
  return (trainable === undefined ? op(anchors) : op(anchors, trainable)) as tf.Tensor1D;
}

/**
 * @internal For each of the N labels, how many other samples share it (SupCon's positive
 * count), counted over column chunks of at most `chunkSize`: O(N x chunkSize) memory. Constants:
 * labels carry no gradient.
 */
export function chunkedPositiveCounts(labels: tf.Tensor1D, chunkSize: number): tf.Tensor1D {
  const n = labels.shape[0];
  let count: tf.Tensor1D = tf.fill([n], -1); // the anchor itself is not its own positive
  for (let offset = 0; offset < n; offset += chunkSize) {
    const size = Math.min(chunkSize, n - offset);
    const next = tf.tidy(() => {
      const same = tf.equal(
        tf.reshape(labels, [n, 1]),
        tf.reshape(tf.slice(labels, [offset], [size]), [1, size]),
      );
      return tf.add<tf.Tensor1D>(count, tf.sum(tf.cast(same, 'float32'), 1));
    });
    count.dispose();
    count = next;
  }
  return count;
}
