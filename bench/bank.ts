/**
 * MemoryBank cost for `npm run bench`: one step's bank work at InstDisc's size (N = 60,000 images,
 * D = 128, B = 256): the update of the batch's rows, and the read of the rows NCE scores (the B
 * positives and K = 4096 noise entries), with the entries in JavaScript memory (`storage: 'host'`,
 * O(B x D) an update) against one [N, D] tensor (`'backend'`, a scatter that copies all of it).
 * Run alone with `npx tsx bench/bank.ts [--backends=cpu,wasm]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fileURLToPath } from 'node:url';
import { MemoryBank, selectBackend, type BackendName } from '../src/index.js';
import type { BenchRecord } from './records.js';
import { timeIt } from './timing.js';

/** Markdown rows: backend, operation, host ms, backend-tensor ms, ratio; records to `records`. */
export async function bankRows(
  backends: readonly BackendName[],
  records?: BenchRecord[],
): Promise<string[]> {
  const rows: string[] = [];
  const [n, d, b, k] = [60000, 128, 256, 4096];
  for (const backend of backends) {
    await selectBackend(backend);
    const banks = {
      host: new MemoryBank(n, d, { seed: 1, storage: 'host' }),
      backend: new MemoryBank(n, d, { seed: 1, storage: 'backend' }),
    };
    const features = tf.randomNormal<tf.Rank.R2>([b, d], 0, 1, 'float32', 2);
    let step = 0;
    const indices = (): Int32Array => {
      step++;
      return Int32Array.from({ length: b }, (_, i) => (step * b + i) % n);
    };
    const ms: Record<string, { update: number; read: number }> = {};
    for (const [name, bank] of Object.entries(banks)) {
      const update = await timeIt(async () => {
        bank.update(indices(), features);
        if (bank.storage === 'backend') await bank.value.data();
      }, 10);
      const read = await timeIt(async () => {
        const noise = bank.sampleNoise(k);
        const rows = [bank.read(indices()), bank.read(noise as tf.Tensor1D)];
        await Promise.all(rows.map((r) => r.data()));
        tf.dispose([noise, ...rows]);
      }, 10);
      ms[name] = { update, read };
    }
    for (const op of ['update', 'read'] as const) {
      const host = ms['host']?.[op] ?? Number.NaN;
      const tensor = ms['backend']?.[op] ?? Number.NaN;
      const what = op === 'update' ? `update B=${b}` : `read B=${b} positives + K=${k} noise rows`;
      const name = `N=${n} D=${d}: ${what}`;
      for (const [metric, value] of [
        ['hostMs', host],
        ['backendMs', tensor],
      ] as const) {
        records?.push({ suite: 'bank', backend, case: name, metric, value, unit: 'ms' });
      }
      rows.push(
        `| ${backend} | ${name} | ${host.toFixed(2)} | ${tensor.toFixed(2)} | ${(tensor / host).toFixed(1)} |`,
      );
    }
    features.dispose();
    banks.host.dispose();
    banks.backend.dispose();
  }
  return rows;
}

/** The table's header lines. */
export const BANK_HEADER = [
  '| backend | memory bank | host storage (ms) | backend tensor (ms) | tensor / host |',
  '|---|---|---|---|---|',
];

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  tf.enableProdMode();
  const arg = process.argv.find((a) => a.startsWith('--backends='))?.split('=')[1];
  const rows = await bankRows((arg ?? 'cpu,wasm').split(',') as BackendName[]);
  for (const line of [...BANK_HEADER, ...rows]) console.log(line);
}
