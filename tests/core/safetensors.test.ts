/**
 * safetensors: round trips of every dtype and shape, byte-exact determinism, the reference
 * implementation's own byte vectors (safetensors/src/tensor.rs tests), a fixture written by the
 * independent Python writer (scripts/fixtures/safetensors_reference.py) decoded to its JSON values
 * and re-written byte for byte, the 8-byte header padding, and hostile files, each of which must
 * raise a ContrastiveError and leave no tensor behind.
 *
 * With SAFETENSORS_EXPORT=<path>, the fixture's tensors re-encoded by encodeSafetensors are
 * written to <path>, for `python3 scripts/fixtures/safetensors_reference.py --check <path>`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ContrastiveError,
  decodeSafetensors,
  encodeSafetensors,
  parseSafetensors,
  safetensorsValues,
  serializeSafetensors,
  type SafetensorsDtype,
  type SafetensorsTensorInput,
} from '../../src/index.js';
import { describeBackends } from '../support/backends.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures');
const fixture = new Uint8Array(
  readFileSync(resolve(FIXTURES, 'safetensors-reference.safetensors')),
);
const reference = JSON.parse(
  readFileSync(resolve(FIXTURES, 'safetensors-reference.json'), 'utf8'),
) as {
  metadata: Record<string, string>;
  tensors: Record<
    string,
    { dtype: string; shape: number[]; values: (number | string | boolean)[] }
  >;
};

/** The fixture JSON's value encoding: non-finite values and -0 are strings. */
function jsonNumber(v: number | string | boolean): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  return { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 }[v] as number;
}

/** Elementwise identity: NaN equals NaN, -0 differs from 0. */
function expectSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      expect.fail(`${what}[${i}] = ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/** A file from a header text (or object) and a data section, with N = the header's byte length. */
function file(header: string | object, data: number | Uint8Array = 0, n?: bigint): Uint8Array {
  const text = new TextEncoder().encode(
    typeof header === 'string' ? header : JSON.stringify(header),
  );
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + bytes.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(bytes, 8 + text.length);
  return out;
}

function f32(shape: number[], begin: number, end: number): object {
  return { dtype: 'F32', shape, data_offsets: [begin, end] };
}

/** Runs `f` and returns the ContrastiveError it throws (failing if it throws anything else). */
function contrastiveError(f: () => unknown): ContrastiveError {
  try {
    f();
  } catch (e) {
    if (e instanceof ContrastiveError) return e;
    throw new Error(`expected a ContrastiveError, got ${String(e)}`);
  }
  throw new Error('expected a ContrastiveError, but nothing was thrown');
}

/** Header length N and the header text, read straight from the bytes. */
function headerOf(bytes: Uint8Array): { n: number; text: string } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, text: new TextDecoder().decode(bytes.subarray(8, 8 + n)) };
}

const SHAPES: number[][] = [[], [0], [3], [2, 3, 4]];

function valuesFor(dtype: 'float32' | 'int32' | 'bool', size: number): number[] {
  const special = [-0, NaN, Infinity, -Infinity, 1e-45, 3.4028234663852886e38, 0.1];
  return Array.from({ length: size }, (_, i) => {
    if (dtype === 'bool') return (i * 7) % 3 === 0 ? 1 : 0;
    if (dtype === 'int32') return i === 0 ? -(2 ** 31) : i === 1 ? 2 ** 31 - 1 : i * 37 - 300;
    return i < special.length ? (special[i] as number) : Math.fround(Math.sin(i) * 10 ** (i % 7));
  });
}

describeBackends('encodeSafetensors / decodeSafetensors', ({ name: backend }) => {
  it('round-trips float32, int32 and bool at shapes [], [0], [3], [2, 3, 4], bit for bit', async () => {
    const originals: Record<string, tf.Tensor> = {};
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      for (const shape of SHAPES) {
        const size = shape.reduce((a, b) => a * b, 1);
        originals[`${dtype}/[${shape.join(',')}]`] = tf.tensor(
          valuesFor(dtype, size),
          shape,
          dtype,
        );
      }
    }
    const bytes = await encodeSafetensors(originals);
    const parsed = parseSafetensors(bytes);
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(metadata).toEqual({});
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(originals).sort());
    for (const [name, t] of Object.entries(originals)) {
      const back = tensors[name]!;
      expect(back.dtype, name).toBe(t.dtype);
      expect(back.shape, name).toEqual(t.shape);
      expect(parsed.entries.get(name)?.dtype).toBe(
        ({ float32: 'F32', int32: 'I32', bool: 'BOOL' } as Record<string, string>)[t.dtype],
      );
      expectSame(await back.data(), await t.data(), name);
    }
    tf.dispose([...Object.values(originals), ...Object.values(tensors)]);
  });

  it('is deterministic: the same tensors and metadata give the same bytes, whatever the key order', async () => {
    const a = tf.tensor([1.5, -2, 3], [3]);
    const b = tf.tensor([[1, 2]], [1, 2], 'int32');
    const c = tf.tensor([true, false], [2], 'bool');
    const one = await encodeSafetensors({ a, b, c }, { step: '10', method: 'moco' });
    const two = await encodeSafetensors({ c, b, a }, { method: 'moco', step: '10' });
    const three = await encodeSafetensors({ a, b, c }, { step: '10', method: 'moco' });
    expect(Array.from(two)).toEqual(Array.from(one));
    expect(Array.from(three)).toEqual(Array.from(one));
    // A different value gives different bytes (the comparison above can fail).
    const a2 = tf.tensor([1.5, -2, 3.0000002], [3]);
    const four = await encodeSafetensors({ a: a2, b, c }, { step: '10', method: 'moco' });
    expect(Array.from(four)).not.toEqual(Array.from(one));
    tf.dispose([a, b, c, a2]);
  });

  it('decodes the Python fixture to its JSON values: F16 and BF16 exactly, F64 rounded, I64 and U8 as int32', () => {
    const { tensors, metadata } = decodeSafetensors(fixture);
    expect(metadata).toEqual(reference.metadata);
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(reference.tensors).sort());
    const tfjsDtype: Record<string, string> = {
      F32: 'float32',
      F16: 'float32',
      BF16: 'float32',
      F64: 'float32',
      I32: 'int32',
      I64: 'int32',
      U8: 'int32',
      BOOL: 'bool',
    };
    for (const [name, spec] of Object.entries(reference.tensors)) {
      const t = tensors[name]!;
      expect(t.dtype, name).toBe(tfjsDtype[spec.dtype]);
      expect(t.shape, name).toEqual(spec.shape);
      const expected = spec.values
        .map(jsonNumber)
        .map((v) => (spec.dtype === 'F64' ? Math.fround(v) : v));
      expectSame(t.dataSync(), expected, `${name} (${spec.dtype})`);
    }
    // Decoded in data order (decreasing alignment, then name), as the file lays them out.
    const order = [...parseSafetensors(fixture).entries.keys()];
    expect(Object.keys(tensors)).toEqual(order);
    expect(order.slice(0, 3)).toEqual(['bn.num_batches_tracked', 'steps', 'float64']);
    tf.dispose(Object.values(tensors));
  });

  it("re-encodes the fixture's tensors (for the Python --check) and decodes them back unchanged", async () => {
    const first = decodeSafetensors(fixture);
    const bytes = await encodeSafetensors(first.tensors, first.metadata);
    const exportPath = process.env.SAFETENSORS_EXPORT;
    if (exportPath !== undefined && exportPath !== '') writeFileSync(exportPath, bytes);
    const second = decodeSafetensors(bytes);
    expect(second.metadata).toEqual(reference.metadata);
    for (const [name, t] of Object.entries(first.tensors)) {
      expect(second.tensors[name]!.dtype).toBe(t.dtype);
      expectSame(second.tensors[name]!.dataSync(), t.dataSync(), name);
    }
    // float32 -> F32, int32 -> I32, bool -> BOOL.
    const dtypes = Object.fromEntries(
      [...parseSafetensors(bytes).entries].map(([k, e]) => [k, e.dtype]),
    );
    expect(dtypes).toMatchObject({
      half: 'F32',
      bf16: 'F32',
      steps: 'I32',
      pixels: 'I32',
      mask: 'BOOL',
    });
    tf.dispose([...Object.values(first.tensors), ...Object.values(second.tensors)]);
  });

  it('round-trips metadata, including non-ASCII text, quotes, newlines and keys such as __proto__', async () => {
    const t = tf.scalar(1);
    const metadata = JSON.parse(
      '{"__proto__": "p", "constructor": "c", "ünï": "cödé \\"q\\"\\n\\u0001", "": "", "1": "one"}',
    ) as Record<string, string>;
    const bytes = await encodeSafetensors({ t }, metadata);
    const back = decodeSafetensors(bytes);
    expect(Object.keys(back.metadata).sort()).toEqual(Object.keys(metadata).sort());
    for (const key of Object.keys(metadata)) expect(back.metadata[key]).toBe(metadata[key]);
    expect(Object.getPrototypeOf(back.metadata)).toBe(Object.prototype);
    tf.dispose([t, ...Object.values(back.tensors)]);
  });

  it('keeps a tensor named __proto__ as an own key', async () => {
    const t = tf.tensor([1, 2]);
    const named = Object.fromEntries([['__proto__', t]]) as Record<string, tf.Tensor>;
    const { tensors } = decodeSafetensors(await encodeSafetensors(named));
    expect(Object.keys(tensors)).toEqual(['__proto__']);
    expect(Array.from(tensors['__proto__']!.dataSync())).toEqual([1, 2]);
    tf.dispose([t, ...Object.values(tensors)]);
  });

  it('copies the data: the input may be unaligned, and changing it later changes no tensor', () => {
    const big = new Uint8Array(fixture.length + 3);
    big.set(fixture, 3);
    const view = big.subarray(3); // every F32/I64 tensor is now misaligned by 3 bytes
    const { tensors } = decodeSafetensors(view);
    const { tensors: expected } = decodeSafetensors(fixture);
    const before = Array.from(tensors['encoder.weight']!.dataSync());
    big.fill(0xff, 8 + headerOf(fixture).n + 3);
    for (const [name, t] of Object.entries(expected)) {
      expectSame(tensors[name]!.dataSync(), t.dataSync(), name);
    }
    expect(Array.from(tensors['encoder.weight']!.dataSync())).toEqual(before);
    tf.dispose([...Object.values(tensors), ...Object.values(expected)]);
  });

  it('rejects what it cannot encode, naming the tensor or the key', async () => {
    const s = tf.tensor(['a'], [1], 'string');
    // wasm has no Complex kernel; the cpu run covers complex64.
    const c = backend === 'cpu' ? tf.complex([1], [2]) : tf.scalar(3);
    const d = tf.scalar(1);
    d.dispose();
    const ok = tf.scalar(2);
    const cases: [Record<string, unknown>, Record<string, unknown>, RegExp][] = [
      [{ s }, {}, /tensors\["s"\].*float32 or int32 or bool/],
      [{ d }, {}, /disposed/],
      [{ x: [1, 2] }, {}, /tensors\["x"\]/],
      [{ __metadata__: ok }, {}, /__metadata__/],
      [{ ok }, { step: 10 }, /metadata\["step"\].*a string/],
    ];
    if (backend === 'cpu') cases.push([{ c }, {}, /complex64/]);
    for (const [tensors, metadata, message] of cases) {
      await expect(
        encodeSafetensors(tensors as Record<string, tf.Tensor>, metadata as Record<string, string>),
      ).rejects.toThrow(message);
      await expect(
        encodeSafetensors(tensors as Record<string, tf.Tensor>, metadata as Record<string, string>),
      ).rejects.toBeInstanceOf(ContrastiveError);
    }
    tf.dispose([s, c, ok]);
  });

  it('values that tfjs cannot hold are ContrastiveErrors naming the tensor and index, and leave no tensor', () => {
    const good: SafetensorsTensorInput = {
      dtype: 'F32',
      shape: [2],
      data: new Float32Array([1, 2]),
    };
    const cases: [SafetensorsTensorInput, RegExp][] = [
      [
        { dtype: 'I64', shape: [3], data: new BigInt64Array([0n, 1n, 2n ** 31n]) },
        /I64 values within int32.*2147483648 at flat index 2/,
      ],
      [
        { dtype: 'I64', shape: [1], data: new BigInt64Array([-(2n ** 31n) - 1n]) },
        /-2147483649 at flat index 0/,
      ],
      [
        { dtype: 'U64', shape: [1], data: new BigUint64Array([2n ** 64n - 1n]) },
        /18446744073709551615/,
      ],
      [
        { dtype: 'U64', shape: [1], data: new BigUint64Array([2n ** 31n]) },
        /U64 values within int32.*2147483648 at flat index 0/,
      ],
      [
        { dtype: 'U32', shape: [2], data: new Uint32Array([5, 2 ** 31]) },
        /2147483648 at flat index 1/,
      ],
      [
        { dtype: 'F64', shape: [2], data: new Float64Array([1, -1e300]) },
        /within float32 range.*-1e\+300 at flat index 1/,
      ],
      [{ dtype: 'F8_E4M3', shape: [2], data: new Uint8Array(2) }, /a dtype tfjs can hold.*F8_E4M3/],
      [{ dtype: 'C64', shape: [1], data: new Uint8Array(8) }, /C64/],
    ];
    for (const [bad, message] of cases) {
      // 'a' (F32) sorts before every one of these dtypes but F64, I64 and U64: either way the
      // decoder must not leave 'a' allocated.
      const bytes = serializeSafetensors({ a: good, z: bad });
      const e = contrastiveError(() => decodeSafetensors(bytes));
      expect(e.message).toMatch(message);
      expect(e.argument).toBe('tensor "z"');
      expect(e.caller).toBe('decodeSafetensors');
    }
    // The edges fit: int32's minimum and maximum from I64, float32's maximum from F64.
    const edges = decodeSafetensors(
      serializeSafetensors({
        i: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 31n), 2n ** 31n - 1n]) },
        f: {
          dtype: 'F64',
          shape: [3],
          data: new Float64Array([3.4028234663852886e38, Infinity, NaN]),
        },
      }),
    );
    expect(Array.from(edges.tensors.i!.dataSync())).toEqual([-(2 ** 31), 2 ** 31 - 1]);
    expectSame(edges.tensors.f!.dataSync(), [3.4028234663852886e38, Infinity, NaN], 'f');
    tf.dispose(Object.values(edges.tensors));
  });

  it('a hostile file fails in decodeSafetensors as in parseSafetensors, with no tensor left behind', () => {
    const e = contrastiveError(() => decodeSafetensors(fixture.subarray(0, fixture.length - 1)));
    expect(e.caller).toBe('decodeSafetensors');
    expect(e.message).toMatch(/data section|truncated/);
  });
});

describe('serializeSafetensors / parseSafetensors (no tfjs tensors)', () => {
  it("writes the reference implementation's bytes for its own test cases (safetensors/src/tensor.rs)", () => {
    const six = new Float32Array([0, 1, 2, 3, 4, 5]);
    // test_serialization: 'attn.0' F32 [1, 2, 3]; the header is exactly 64 bytes, no padding.
    const serialization = [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121,
      112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50,
      44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48,
      44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64,
      0, 0, 160, 64,
    ];
    expect(
      Array.from(serializeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: six } })),
    ).toEqual(serialization);
    // test_serialization_forced_alignement: 'attn0' [1, 1, 2, 3]; 7 spaces pad 65 to 72 bytes.
    const forced = [
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112,
      101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44,
      50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91,
      48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0,
      64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    expect(
      Array.from(serializeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: six } })),
    ).toEqual(forced);
    // test_empty: no tensors, without and with metadata.
    expect(Array.from(serializeSafetensors({}))).toEqual([
      8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32,
    ]);
    expect(Array.from(serializeSafetensors({}, { framework: 'pt' }))).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58,
      123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32,
      32, 32, 32, 32,
    ]);
  });

  it("re-writes the Python writer's fixture byte for byte from its parsed raw bytes", () => {
    const parsed = parseSafetensors(fixture);
    const inputs = Object.fromEntries(
      [...parsed.entries].map(([name, e]) => [
        name,
        { dtype: e.dtype, shape: e.shape, data: e.bytes },
      ]),
    );
    expect(Array.from(serializeSafetensors(inputs, parsed.metadata))).toEqual(Array.from(fixture));
  });

  it('pads the header with spaces to 8 bytes; the data section starts at 8 + N and each tensor is aligned', () => {
    for (let length = 1; length <= 17; length++) {
      const name = 'x'.repeat(length);
      const bytes = serializeSafetensors({
        [name]: { dtype: 'F64', shape: [1], data: new Float64Array([1.25]) },
        [`${name}b`]: { dtype: 'I32', shape: [1], data: new Int32Array([-3]) },
        [`${name}c`]: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
        [`${name}d`]: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
      });
      const { n, text } = headerOf(bytes);
      expect(n % 8, `N for a name of ${length}`).toBe(0);
      const json = text.trimEnd();
      expect(json.endsWith('}')).toBe(true);
      expect(text.slice(json.length)).toMatch(/^ {0,7}$/);
      const parsed = parseSafetensors(bytes);
      expect(parsed.dataStart).toBe(8 + n);
      expect(bytes.length).toBe(8 + n + 8 + 4 + 2 + 3);
      // Decreasing alignment: F64, I32, F16, U8, each at a multiple of its own size in the file.
      expect([...parsed.entries.values()].map((e) => e.dtype)).toEqual(['F64', 'I32', 'F16', 'U8']);
      for (const e of parsed.entries.values()) {
        const size = { F64: 8, I32: 4, F16: 2, U8: 1 }[e.dtype as 'F64'];
        expect((parsed.dataStart + e.dataOffsets[0]) % size).toBe(0);
        expect(e.bytes.byteOffset).toBe(parsed.dataStart + e.dataOffsets[0]);
        expect(e.bytes.buffer).toBe(bytes.buffer); // a view, not a copy
      }
      expect(new DataView(bytes.buffer, 8 + n).getFloat64(0, true)).toBe(1.25);
      expect(new DataView(bytes.buffer, 8 + n + 8).getInt32(0, true)).toBe(-3);
    }
  });

  it('round-trips every dtype tfjs-free, and safetensorsValues converts each as documented', () => {
    const inputs: Record<string, SafetensorsTensorInput> = {
      u8: { dtype: 'U8', shape: [3], data: new Uint8Array([0, 128, 255]) },
      i8: { dtype: 'I8', shape: [3], data: new Int8Array([-128, 0, 127]) },
      i16: { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
      u16: { dtype: 'U16', shape: [2], data: new Uint16Array([0, 65535]) },
      u32: { dtype: 'U32', shape: [2], data: new Uint32Array([0, 2 ** 31 - 1]) },
      i32: { dtype: 'I32', shape: [1, 2], data: new Int32Array([-5, 6]) },
      i64: { dtype: 'I64', shape: [], data: new BigInt64Array([-7n]) },
      u64: { dtype: 'U64', shape: [1], data: new BigUint64Array([9n]) },
      f16: { dtype: 'F16', shape: [4], data: new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff]) },
      bf16: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xff80]) },
      f32: { dtype: 'F32', shape: [2], data: new Float32Array([0.5, -0]) },
      f64: { dtype: 'F64', shape: [1], data: new Float64Array([0.1]) },
      bool: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 7]) }, // 7 is written as 1
      f4: { dtype: 'F4', shape: [4], data: new Uint8Array([0x12, 0x34]) },
      raw: { dtype: 'F32', shape: [1], data: new Uint8Array([0, 0, 0x80, 0x3f]) }, // raw LE bytes
    };
    const bytes = serializeSafetensors(inputs);
    const parsed = parseSafetensors(bytes);
    const expected: Record<string, [string, number[]]> = {
      u8: ['int32', [0, 128, 255]],
      i8: ['int32', [-128, 0, 127]],
      i16: ['int32', [-32768, 32767]],
      u16: ['int32', [0, 65535]],
      u32: ['int32', [0, 2 ** 31 - 1]],
      i32: ['int32', [-5, 6]],
      i64: ['int32', [-7]],
      u64: ['int32', [9]],
      f16: ['float32', [1, -2, 2 ** -24, 65504]],
      bf16: ['float32', [1, -Infinity]],
      f32: ['float32', [0.5, -0]],
      f64: ['float32', [Math.fround(0.1)]],
      bool: ['bool', [1, 0, 1]],
      raw: ['float32', [1]],
    };
    for (const [name, [dtype, values]] of Object.entries(expected)) {
      const v = safetensorsValues(parsed.entries.get(name)!);
      expect(v.dtype, name).toBe(dtype);
      expect(v.shape, name).toEqual([...inputs[name]!.shape]);
      expectSame(v.values, values, name);
    }
    // The raw bytes come back as written.
    expect(Array.from(parsed.entries.get('f4')!.bytes)).toEqual([0x12, 0x34]);
    expect(Array.from(parsed.entries.get('bool')!.bytes)).toEqual([1, 0, 1]);
    const e = contrastiveError(() => safetensorsValues(parsed.entries.get('f4')!));
    expect(e.message).toMatch(/F4; read its raw bytes/);
  });

  it('widens every F16 and BF16 bit pattern exactly (against the IEEE definition)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bytes = serializeSafetensors({
      h: { dtype: 'F16', shape: [65536], data: all },
      b: { dtype: 'BF16', shape: [65536], data: all },
    });
    const parsed = parseSafetensors(bytes);
    const half = safetensorsValues(parsed.entries.get('h')!).values;
    const bf = safetensorsValues(parsed.entries.get('b')!).values;
    const word = new Uint32Array(1);
    const asFloat = new Float32Array(word.buffer);
    for (let i = 0; i < 65536; i++) {
      const sign = i & 0x8000 ? -1 : 1;
      const exponent = (i >> 10) & 31;
      const fraction = i & 1023;
      const h =
        exponent === 31
          ? fraction === 0
            ? sign * Infinity
            : NaN
          : exponent === 0
            ? sign * fraction * 2 ** -24
            : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
      if (!Object.is(half[i], h)) expect.fail(`F16 0x${i.toString(16)}: ${half[i]} != ${h}`);
      word[0] = i << 16;
      if (!Object.is(bf[i], asFloat[0]))
        expect.fail(`BF16 0x${i.toString(16)}: ${bf[i]} != ${asFloat[0]}`);
    }
    // Spot values: 0x3555 is 0.333251953125, 0x3e4d (bf16) is 0.2001953125.
    expect(half[0x3555]).toBe(0.333251953125);
    expect(bf[0x3e4d]).toBe(0.2001953125);
  });

  it('accepts what the reference reader accepts: JSON whitespace around the header, null metadata, empty tensors sharing an offset', () => {
    // tensor.rs test_whitespace_padded_header and test_whitespace_leading_padded_header.
    expect(parseSafetensors(file('{}\r \t\n')).entries.size).toBe(0);
    expect(parseSafetensors(file('\t\n{}\r ')).entries.size).toBe(0);
    expect(parseSafetensors(file('{"__metadata__": null}')).metadata).toEqual({});
    const zeros = parseSafetensors(
      file(
        {
          b: { dtype: 'I32', shape: [2, 0], data_offsets: [4, 4] },
          a: f32([1], 0, 4),
          c: f32([0], 4, 4),
          z: f32([0], 0, 0),
        },
        4,
      ),
    );
    expect([...zeros.entries.keys()]).toEqual(['z', 'a', 'b', 'c']);
  });

  it('rejects hostile and malformed files with a ContrastiveError naming what is wrong', () => {
    const entry = f32([2], 0, 8);
    const cases: [string, Uint8Array, string, RegExp][] = [
      ['empty input', new Uint8Array(0), 'bytes', /0 bytes \(truncated\)/],
      ['fewer than 8 bytes', new Uint8Array([8, 0, 0]), 'bytes', /3 bytes \(truncated\)/],
      [
        'header length beyond the file',
        file('{}', 0, 1000n),
        'bytes',
        /header length of 1000 bytes in a file of 10 bytes/,
      ],
      [
        'header length over 100 MB',
        file('{}', 0, 100_000_001n),
        'bytes',
        /at most 100000000 bytes.*100000001/,
      ],
      ['header length of 2^63', file('{}', 0, 2n ** 63n), 'bytes', /at most 100000000 bytes/],
      [
        'header not UTF-8',
        file('{"a":1}').map((b, i) => (i === 10 ? 0xff : b)),
        'bytes',
        /not valid UTF-8/,
      ],
      ['header not JSON', file('{"a": {'), 'bytes', /not valid JSON/],
      ['header with a byte-order mark', file('\ufeff{}'), 'bytes', /not valid JSON/],
      ['header an array', file('[1, 2]'), 'bytes', /a JSON object.*\[1,2\]/],
      ['header null', file('null'), 'bytes', /a JSON object/],
      ['entry not an object', file({ a: 3 }), 'header["a"]', /tensor entry/],
      [
        'missing dtype',
        file({ a: { shape: [2], data_offsets: [0, 8] } }, 8),
        'header["a"].dtype',
        /field is missing/,
      ],
      [
        'unknown dtype',
        file({ a: { dtype: 'Q8', shape: [2], data_offsets: [0, 2] } }, 2),
        'header["a"].dtype',
        /safetensors dtype.*"Q8"/,
      ],
      [
        'lower-case dtype',
        file({ a: { dtype: 'f32', shape: [2], data_offsets: [0, 8] } }, 8),
        'header["a"].dtype',
        /"f32"/,
      ],
      [
        'unknown field',
        file({ a: { dtype: 'F32', shape: [2], data_offset: [0, 8] } }, 8),
        'header["a"]',
        /only dtype, shape and data_offsets.*"data_offset"/,
      ],
      [
        'shape not an array',
        file({ a: f32(2 as never, 0, 8) }, 8),
        'header["a"].shape',
        /array of non-negative integers/,
      ],
      ['negative shape', file({ a: f32([-2], 0, 8) }, 8), 'header["a"].shape', /\[-2\]/],
      ['fractional shape', file({ a: f32([1.5], 0, 6) }, 6), 'header["a"].shape', /\[1\.5\]/],
      [
        'shape past 2^53',
        file('{"a":{"dtype":"F32","shape":[18446744073709551614],"data_offsets":[0,8]}}', 8),
        'header["a"].shape',
        /below 2\^53/,
      ],
      [
        'offsets not a pair',
        file({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8),
        'header["a"].data_offsets',
        /two non-negative integers/,
      ],
      [
        'offsets as strings',
        file({ a: { dtype: 'F32', shape: [2], data_offsets: ['0', '8'] } }, 8),
        'header["a"].data_offsets',
        /two non-negative/,
      ],
      [
        'end before begin',
        file({ a: f32([0], 8, 4) }, 8),
        'header["a"].data_offsets',
        /begin <= end.*\[8, 4\]/,
      ],
      [
        'shape and dtype do not match the offsets',
        file({ a: f32([2], 0, 4) }, 4),
        'header["a"].data_offsets',
        /8 bytes of shape \[2\] in F32.*\[0, 4\], 4 bytes/,
      ],
      [
        'element count overflow',
        file({ a: f32([2 ** 26, 2 ** 26, 2 ** 26], 0, 8) }, 8),
        'header["a"].shape',
        /overflows/,
      ],
      [
        'overlapping offsets',
        file({ a: entry, b: f32([2], 4, 12) }, 12),
        'header["b"].data_offsets',
        /starting at byte 8.*overlaps tensor "a"/,
      ],
      [
        'the same offsets twice',
        file({ a: entry, b: entry }, 8),
        'header["b"].data_offsets',
        /overlaps tensor "a"/,
      ],
      [
        'a gap between tensors',
        file({ a: entry, b: f32([2], 12, 20) }, 20),
        'header["b"].data_offsets',
        /gap of 4 bytes/,
      ],
      [
        'a gap at the start',
        file({ a: f32([2], 4, 12) }, 12),
        'header["a"].data_offsets',
        /start of the data section.*gap of 4/,
      ],
      [
        'offsets past the end (truncated data)',
        file({ a: entry }, 4),
        'header["a"].data_offsets',
        /within the data section \(4 bytes\)/,
      ],
      [
        'bytes after the last tensor',
        file({ a: entry }, 12),
        'bytes',
        /12 bytes, 4 of them not in any tensor/,
      ],
      [
        'a huge claimed tensor in a small file',
        file({ a: f32([2 ** 40], 0, 2 ** 42) }, 16),
        'header["a"].data_offsets',
        /within the data section/,
      ],
      [
        'sub-byte dtype not filling bytes',
        file({ a: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 2),
        'header["a"].shape',
        /12 bits, not whole bytes|3 elements of 4 bits/,
      ],
      [
        'metadata not an object',
        file({ __metadata__: ['a'] }),
        'header["__metadata__"]',
        /an object of strings/,
      ],
      [
        'a non-string metadata value',
        file({ __metadata__: { step: 10 } }),
        'header["__metadata__"]["step"]',
        /a string.*10/,
      ],
      [
        'nested metadata',
        file({ __metadata__: { a: { b: 'c' } } }),
        'header["__metadata__"]["a"]',
        /a string/,
      ],
      [
        'duplicate tensor names',
        file(`{"a":${JSON.stringify(entry)},"a":${JSON.stringify(entry)}}`, 8),
        'header',
        /duplicate keys.*"a" twice/,
      ],
      [
        'duplicate metadata keys',
        file('{"__metadata__":{"k":"1","k":"2"}}'),
        'header["__metadata__"]',
        /"k" twice/,
      ],
      [
        'a duplicate field in an entry',
        file('{"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}', 8),
        'header["a"]',
        /"dtype" twice/,
      ],
      [
        'duplicate __metadata__',
        file('{"__metadata__":{},"__metadata__":{}}'),
        'header',
        /"__metadata__" twice/,
      ],
    ];
    for (const [what, bytes, argument, message] of cases) {
      const e = contrastiveError(() => parseSafetensors(bytes));
      expect(e.caller, what).toBe('parseSafetensors');
      expect(e.argument, what).toBe(argument);
      expect(e.message, what).toMatch(message);
    }
    // Keys that are escaped differently are still the same key.
    const escaped = contrastiveError(() =>
      parseSafetensors(file('{"__metadata__":{"k":"1","\\u006b":"2"}}')),
    );
    expect(escaped.message).toMatch(/"k" twice/);
    // Not bytes at all.
    for (const notBytes of [new ArrayBuffer(16), [1, 2, 3], 'file', undefined]) {
      expect(
        contrastiveError(() => parseSafetensors(notBytes as unknown as Uint8Array)).argument,
      ).toBe('bytes');
    }
  });

  it('every truncation and many random corruptions of a valid file give a result or a ContrastiveError, never another error', () => {
    for (let length = 0; length < fixture.length; length++) {
      contrastiveError(() => parseSafetensors(fixture.subarray(0, length)));
    }
    let seed = 12345;
    const next = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    const { n } = headerOf(fixture);
    let parsed = 0;
    for (let trial = 0; trial < 3000; trial++) {
      const copy = fixture.slice();
      const flips = 1 + (next() % 3);
      for (let k = 0; k < flips; k++) {
        // Mostly the header and its length, where the structure is.
        const at = next() % 4 === 0 ? next() % 8 : 8 + (next() % n);
        copy[at] = next() & 0xff;
      }
      try {
        const file = parseSafetensors(copy);
        for (const e of file.entries.values()) {
          try {
            safetensorsValues(e);
          } catch (err) {
            if (!(err instanceof ContrastiveError)) throw err;
          }
        }
        parsed++;
      } catch (err) {
        if (!(err instanceof ContrastiveError)) throw err;
      }
    }
    // Some corruptions land in spaces or string contents and leave a valid file.
    expect(parsed).toBeGreaterThan(0);
    expect(parsed).toBeLessThan(3000);
  });

  it('rejects inputs it cannot write, naming the tensor and field', () => {
    const cases: [Record<string, unknown>, Record<string, unknown>, string, RegExp][] = [
      [
        { a: { dtype: 'Q8', shape: [1], data: new Uint8Array(1) } },
        {},
        'tensors["a"].dtype',
        /safetensors dtype/,
      ],
      [
        { a: { dtype: 'F32', shape: [-1], data: new Float32Array(0) } },
        {},
        'tensors["a"].shape',
        /non-negative/,
      ],
      [
        { a: { dtype: 'F32', shape: [2], data: new Float32Array(3) } },
        {},
        'tensors["a"].data',
        /8 bytes of shape \[2\].*12 bytes/,
      ],
      [
        { a: { dtype: 'F32', shape: [2], data: new Int32Array(2) } },
        {},
        'tensors["a"].data',
        /Float32Array.*Int32Array/,
      ],
      [
        { a: { dtype: 'F16', shape: [2], data: new Float32Array(2) } },
        {},
        'tensors["a"].data',
        /Uint16Array/,
      ],
      [{ a: { dtype: 'I64', shape: [1], data: [1] } }, {}, 'tensors["a"].data', /BigInt64Array/],
      [
        { a: { dtype: 'F4', shape: [3], data: new Uint8Array(2) } },
        {},
        'tensors["a"].shape',
        /whole bytes/,
      ],
      [
        { __metadata__: { dtype: 'F32', shape: [], data: new Float32Array(1) } },
        {},
        'tensors',
        /__metadata__/,
      ],
      [{}, { a: 1 }, 'metadata["a"]', /a string/],
    ];
    for (const [tensors, metadata, argument, message] of cases) {
      const e = contrastiveError(() =>
        serializeSafetensors(
          tensors as Record<string, SafetensorsTensorInput>,
          metadata as Record<string, string>,
        ),
      );
      expect(e.argument).toBe(argument);
      expect(e.message).toMatch(message);
    }
  });

  it('refuses a header over 100,000,000 bytes, as the reference writer does', () => {
    const e = contrastiveError(() => serializeSafetensors({}, { big: 'a'.repeat(100_000_000) }));
    expect(e.message).toMatch(/at most 100000000 bytes/);
  });

  it('sorts names by UTF-8 bytes (Rust String order), not UTF-16 code units', () => {
    // U+FF5E sorts before U+1F600 in UTF-8 (and code points) but after it in UTF-16.
    const names = ['\u{1F600}', '\uFF5E', 'a', 'B'];
    const data = (): SafetensorsTensorInput => ({
      dtype: 'U8' as SafetensorsDtype,
      shape: [1],
      data: new Uint8Array(1),
    });
    const bytes = serializeSafetensors(Object.fromEntries(names.map((n) => [n, data()])));
    expect([...parseSafetensors(bytes).entries.keys()]).toEqual(['B', 'a', '\uFF5E', '\u{1F600}']);
  });
});
