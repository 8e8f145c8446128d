/**
 * The examples run at their tiny size (`--tiny`), each as a user would run it (a child process of
 * tsx, importing 'tfjs-contrastive/...' through tsconfig's paths), so that none can rot: each
 * must exit with 0 and its last line, a JSON summary, must show the numbers the example claims.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLES = [
  'resume',
  'custom-method',
  'pretrain-finetune',
  'views-loss-compile',
  'loss-in-your-model',
] as const;
type Example = (typeof EXAMPLES)[number];
// Two at a time on two cores: each is mostly single-threaded start-up (tsx, the data set's JSON)
// with short bursts of wasm work.
const CONCURRENCY = 2;
const TIMEOUT_MS = 180_000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly summary: Record<string, unknown>;
  readonly seconds: number;
}

function runExample(name: Example): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `examples/${name}.ts`, '--tiny'], {
      cwd: ROOT,
      env: { ...process.env, EXAMPLE_TINY: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS - 5_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').at(-1) ?? '';
      let summary: Record<string, unknown> = {};
      try {
        summary = JSON.parse(last) as Record<string, unknown>;
      } catch {
        // left empty: the assertions below report the output
      }
      resolve({ code, stdout, stderr, summary, seconds: (performance.now() - started) / 1000 });
    });
  });
}

// All examples start together (two at a time); each test awaits its own.
const runs = new Map<Example, Promise<Run>>();
beforeAll(() => {
  const queue = [...EXAMPLES];
  const next = (): Promise<void> => {
    const name = queue.shift();
    if (name === undefined) return Promise.resolve();
    const run = runExample(name);
    runs.set(name, run);
    return run.then(next, next);
  };
  for (let i = 0; i < CONCURRENCY; i++) void next();
});

async function result(name: Example): Promise<Run> {
  // The pool fills `runs` as it goes; wait until this example has started.
  while (!runs.has(name)) await new Promise((r) => setTimeout(r, 50));
  const run = await runs.get(name)!;
  const context = `examples/${name}.ts --tiny exited ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr.slice(-4000)}`;
  expect(run.code, context).toBe(0);
  expect(run.summary['example'], context).toBe(name);
  expect(run.summary['tensorsLeft'], `${name}: every tensor disposed`).toBe(0);
  return run;
}

const finite = (x: unknown): number => {
  expect(typeof x === 'number' && Number.isFinite(x), `finite number: ${String(x)}`).toBe(true);
  return x as number;
};
const fraction = (x: unknown): number => {
  const v = finite(x);
  expect(v).toBeGreaterThanOrEqual(0);
  expect(v).toBeLessThanOrEqual(1);
  return v;
};

describe('examples (tiny size, as child processes)', () => {
  it(
    'resume: the resumed run is bit-identical to the uninterrupted one; a resumed fit is not',
    async () => {
      const { summary: s } = await result('resume');
      const steps = s['steps'] as number;
      const at = s['resumedAt'] as number;
      expect(s['stoppedBy']).toBe('callback');
      const a = s['lossesA'] as number[];
      const c = s['lossesC'] as number[];
      expect(a).toHaveLength(steps);
      expect(c).toHaveLength(steps - at);
      a.forEach(finite);
      // Exact equality of every loss after the resume point and of every weight.
      expect(c).toEqual(a.slice(at));
      expect(s['lossesEqual']).toBe(true);
      expect(s['weightsDiffering']).toBe(0);
      expect(s['weightsMaxDiff']).toBe(0);
      // What the example says about fit: a second fit call plans a new schedule, so its losses
      // after the first resumed step differ. If fit learns to continue a run, update the example.
      const d = s['lossesD'] as number[];
      expect(d[0]).toBe(a[at]); // the first loss is computed before any update
      expect(s['fitResumeLossesEqual']).toBe(false);
    },
    TIMEOUT_MS,
  );

  it(
    'custom-method: finite losses that fall once the bank is filled; kNN accuracy above chance',
    async () => {
      const { summary: s } = await result('custom-method');
      const losses = s['epochLosses'] as number[];
      expect(losses).toHaveLength(4);
      losses.forEach(finite);
      // Two InfoNCE terms of 1 + K = 129 candidates: random features give about 2 log(129) = 9.7;
      // a collapsed or diverged run would not stay below that bound plus a margin.
      for (const l of losses) expect(l).toBeLessThan(2 * Math.log(129) + 1);
      // Epoch 1 fills the bank (its negatives start random); from then on the loss falls.
      expect(losses.at(-1)!).toBeLessThan(losses[1]!);
      fraction(s['knnBefore']);
      expect(fraction(s['knnAfter'])).toBeGreaterThan(0.2); // 10 classes: chance is 0.1
    },
    TIMEOUT_MS,
  );

  it(
    'pretrain-finetune: pre-training lowers the loss; the classifiers beat chance',
    async () => {
      const { summary: s } = await result('pretrain-finetune');
      expect(finite(s['lossLast'])).toBeLessThan(finite(s['lossFirst']));
      // 10 balanced classes: chance is 0.1 (200 test images: one standard error about 0.02).
      expect(fraction(s['probePretrained'])).toBeGreaterThan(0.15);
      expect(fraction(s['probeRandomInit'])).toBeGreaterThan(0.15);
      expect(fraction(s['accuracyPretrained'])).toBeGreaterThan(0.2);
      expect(fraction(s['accuracyRandomInit'])).toBeGreaterThan(0.2);
    },
    TIMEOUT_MS,
  );

  it(
    'views-loss-compile: a [B, 2, D] model trained by model.fit lowers the NT-Xent',
    async () => {
      const { summary: s } = await result('views-loss-compile');
      expect(s['outputShape']).toEqual([null, 2, 64]);
      const losses = s['epochLosses'] as number[];
      losses.forEach(finite);
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
      expect(finite(s['testLossAfter'])).toBeLessThan(finite(s['testLossBefore']));
      fraction(s['retrievalBefore']);
      fraction(s['retrievalAfter']);
    },
    TIMEOUT_MS,
  );

  it(
    'loss-in-your-model: NT-Xent in an optimizer.minimize loop falls',
    async () => {
      const { summary: s } = await result('loss-in-your-model');
      expect(s['steps']).toBe(6);
      expect(finite(s['lossLast'])).toBeLessThan(finite(s['lossFirst']));
      fraction(s['retrievalBefore']);
      fraction(s['retrievalAfter']);
      fraction(s['knnBefore']);
      expect(fraction(s['knnAfter'])).toBeGreaterThan(0.2);
    },
    TIMEOUT_MS,
  );
});
