/**
 * Machine-readable benchmark records: one JSON object per measurement, written one per line
 * (`.tmp/bench/latest.jsonl` by default, `--json FILE`), and the comparison of two runs'
 * records (`--compare FILE`). Pure functions, no tfjs: tests/bench/records.test.ts checks them.
 */

/** One measurement of a benchmark run. */
export interface BenchRecord extends RecordFields {
  /** The table it belongs to: 'loss', 'queue', 'bank', 'augment', 'kernels', 'step'. */
  readonly suite: string;
}

/** A {@link BenchRecord} without its suite. */
export interface RecordFields {
  /** Where it ran: 'cpu', 'wasm', 'wasm 2T', 'pytorch', ... */
  readonly backend: string;
  /** What was measured, e.g. 'ntXentLoss N=256 D=128' or 'simclr'. */
  readonly case: string;
  /** Which figure of the case: 'ms', 'floorMs', 'imagesPerSecond', 'gflops', ... */
  readonly metric: string;
  /** The figure. */
  readonly value: number;
  /** Its unit: 'ms', 'images/s', 'GFLOP/s', 'x'. */
  readonly unit: string;
  /** Anything else worth keeping (threads, batch, torch version). */
  readonly [extra: string]: unknown;
}

/** The identity of a record across runs: suite, backend, case and metric. */
export function recordKey(r: Pick<BenchRecord, 'suite' | 'backend' | 'case' | 'metric'>): string {
  return [r.suite, r.backend, r.case, r.metric].join(' | ');
}

/** The records of a JSON-lines text; blank lines and lines that are not records are skipped. */
export function parseRecords(text: string): BenchRecord[] {
  const out: BenchRecord[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    let value: unknown;
    try {
      value = JSON.parse(t);
    } catch {
      continue;
    }
    if (isRecord(value)) out.push(value);
  }
  return out;
}

function isRecord(v: unknown): v is BenchRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    ['suite', 'backend', 'case', 'metric', 'unit'].every((k) => typeof r[k] === 'string') &&
    typeof r['value'] === 'number'
  );
}

/** Records as JSON lines (each ends with a newline). */
export function formatRecords(records: readonly BenchRecord[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join('');
}

/** A figure of this run next to the earlier run's. */
export interface ComparedRecord {
  readonly key: string;
  readonly record: BenchRecord;
  readonly unit: string;
  readonly now: number;
  readonly before: number;
  /** now / before (NaN when before is 0 or either is not finite). */
  readonly ratio: number;
}

/** The comparison of two runs' records. */
export interface Comparison {
  /** Records in both runs, in this run's order. */
  readonly both: ComparedRecord[];
  /** Keys only this run has. */
  readonly added: string[];
  /** Keys only the earlier run has. */
  readonly gone: string[];
}

/**
 * Matches this run's records with an earlier run's by {@link recordKey}. A key repeated within a
 * run keeps its last record.
 */
export function compareRecords(
  now: readonly BenchRecord[],
  before: readonly BenchRecord[],
): Comparison {
  const earlier = new Map(before.map((r) => [recordKey(r), r]));
  const current = new Map(now.map((r) => [recordKey(r), r]));
  const both: ComparedRecord[] = [];
  const added: string[] = [];
  for (const [key, r] of current) {
    const old = earlier.get(key);
    if (old === undefined) {
      added.push(key);
      continue;
    }
    const ok = Number.isFinite(r.value) && Number.isFinite(old.value) && old.value !== 0;
    both.push({
      key,
      record: r,
      unit: r.unit,
      now: r.value,
      before: old.value,
      ratio: ok ? r.value / old.value : Number.NaN,
    });
  }
  const gone = [...earlier.keys()].filter((k) => !current.has(k));
  return { both, added, gone };
}

/** A figure with 3 significant digits (at least 1 decimal below 100). */
function figure(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** The comparison as a markdown table, then the keys that are new or gone. */
export function comparisonLines(c: Comparison, earlierFile: string): string[] {
  const lines = [
    `| suite | backend | case | metric | now | before (${earlierFile}) | now / before |`,
    '|---|---|---|---|---|---|---|',
    ...c.both.map(
      ({ record: r, ...f }) =>
        `| ${r.suite} | ${r.backend} | ${r.case} | ${r.metric} | ${figure(f.now)} ${f.unit} | ${figure(f.before)} ${f.unit} | ${
          Number.isNaN(f.ratio) ? '-' : f.ratio.toFixed(2)
        } |`,
    ),
  ];
  if (c.added.length > 0)
    lines.push('', `New in this run (${c.added.length}):`, ...c.added.map((k) => `- ${k}`));
  if (c.gone.length > 0)
    lines.push('', `Gone since ${earlierFile} (${c.gone.length}):`, ...c.gone.map((k) => `- ${k}`));
  return lines;
}

/** The options of `npm run bench`. */
export interface BenchArgs {
  readonly backends: string[];
  readonly quick: boolean;
  /** Where this run's records go. Default `.tmp/bench/latest.jsonl`. */
  readonly json: string;
  /** An earlier run's records to compare with. */
  readonly compare: string | undefined;
  /** The presets of the step benchmark (all when undefined). */
  readonly methods: string[] | undefined;
}

/** The default file of a run's records. */
export const LATEST_RECORDS = '.tmp/bench/latest.jsonl';

/**
 * The value of `--name VALUE` or `--name=VALUE` in `argv`, or undefined. Throws when the flag is
 * last with no value.
 */
export function flagValue(argv: readonly string[], name: string): string | undefined {
  const flag = `--${name}`;
  let value: string | undefined;
  argv.forEach((a, i) => {
    if (a.startsWith(`${flag}=`)) value = a.slice(flag.length + 1);
    else if (a === flag) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new Error(`${flag} needs a value`);
      value = next;
    }
  });
  return value;
}

/** Parses `npm run bench`'s arguments (`--backends=cpu,wasm` or `--backends cpu,wasm`, ...). */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const list = (s: string | undefined): string[] | undefined =>
    s === undefined ? undefined : s.split(',').filter((x) => x.length > 0);
  return {
    backends: list(flagValue(argv, 'backends')) ?? ['cpu', 'wasm'],
    quick: argv.includes('--quick'),
    json: flagValue(argv, 'json') ?? LATEST_RECORDS,
    compare: flagValue(argv, 'compare'),
    methods: list(flagValue(argv, 'methods')),
  };
}
