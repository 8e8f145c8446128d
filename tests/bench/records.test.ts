import { describe, expect, it } from 'vitest';
import {
  LATEST_RECORDS,
  compareRecords,
  comparisonLines,
  formatRecords,
  parseBenchArgs,
  parseRecords,
  type BenchRecord,
} from '../../bench/records.js';

const rec = (c: string, value: number, metric = 'ms'): BenchRecord => ({
  suite: 'step',
  backend: 'wasm 2T',
  case: c,
  metric,
  value,
  unit: 'ms',
});

describe('bench records', () => {
  it('round-trip through JSON lines, skipping lines that are not records', () => {
    const records = [rec('simclr', 100), { ...rec('byol', 50), batch: 128 }];
    const text = `# header\n${formatRecords(records)}\n{"suite": "x"}\nnot json {\n`;
    expect(parseRecords(text)).toEqual(records);
  });

  it('compare the records present in both runs and list the new and gone ones', () => {
    const before = [rec('simclr', 100), rec('byol', 50), rec('swav', 10)];
    const now = [rec('simclr', 80), rec('byol', 50), rec('dino', 30), rec('simclr', 0, 'other')];
    const c = compareRecords(now, before);
    expect(c.both.map((r) => [r.key, r.now, r.before, r.ratio])).toEqual([
      ['step | wasm 2T | simclr | ms', 80, 100, 0.8],
      ['step | wasm 2T | byol | ms', 50, 50, 1],
    ]);
    expect(c.added).toEqual(['step | wasm 2T | dino | ms', 'step | wasm 2T | simclr | other']);
    expect(c.gone).toEqual(['step | wasm 2T | swav | ms']);
    const lines = comparisonLines(c, 'old.jsonl');
    expect(lines[2]).toBe('| step | wasm 2T | simclr | ms | 80.0 ms | 100 ms | 0.80 |');
    expect(lines).toContain('Gone since old.jsonl (1):');
  });

  it('give no ratio against a zero', () => {
    const c = compareRecords([rec('a', 5)], [rec('a', 0)]);
    expect(c.both[0]?.ratio).toBeNaN();
    expect(comparisonLines(c, 'f')[2]?.endsWith('| - |')).toBe(true);
  });

  it('parse --flag=value and --flag value alike', () => {
    expect(parseBenchArgs([])).toEqual({
      backends: ['cpu', 'wasm'],
      quick: false,
      json: LATEST_RECORDS,
      compare: undefined,
      methods: undefined,
    });
    expect(
      parseBenchArgs(['--backends=wasm', '--quick', '--compare', 'a.jsonl', '--json=b.jsonl']),
    ).toEqual({
      backends: ['wasm'],
      quick: true,
      json: 'b.jsonl',
      compare: 'a.jsonl',
      methods: undefined,
    });
    expect(parseBenchArgs(['--compare=a.jsonl', '--methods', 'simclr,byol']).methods).toEqual([
      'simclr',
      'byol',
    ]);
    expect(() => parseBenchArgs(['--compare'])).toThrow('--compare needs a value');
  });
});
