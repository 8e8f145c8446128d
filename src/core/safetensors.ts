/**
 * The library's checkpoint format: safetensors (https://github.com/huggingface/safetensors), the
 * format of Hugging Face and of PyTorch checkpoints shared today, so a checkpoint written here
 * opens in Python (`safetensors.torch.load_file`) and a PyTorch state dict opens here.
 *
 * Layout: 8 bytes N (unsigned 64-bit little-endian), N bytes of UTF-8 JSON header
 * `{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"key": "value"}}`, then the data section, the tensors' raw little-endian bytes
 * one after the other (offsets count from the start of the data section).
 *
 * Two levels: {@link parseSafetensors} and {@link serializeSafetensors} work on bytes and typed
 * arrays and need no tfjs backend; {@link decodeSafetensors} and {@link encodeSafetensors} build
 * on them with tfjs tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkTensor, describeValue } from './checks.js';
import { ContrastiveError } from './errors.js';

/**
 * A safetensors element type, as the header spells it. The list and the order are those of the
 * reference implementation's `Dtype` enum (safetensors/src/tensor.rs), in increasing alignment:
 * the reference writer lays tensors out in decreasing order of it, then by name.
 */
export type SafetensorsDtype =
  | 'BOOL'
  | 'F4'
  | 'F6_E2M3'
  | 'F6_E3M2'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'F8_E8M0'
  | 'F8_E4M3FNUZ'
  | 'F8_E5M2FNUZ'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'C64'
  | 'F64'
  | 'I64'
  | 'U64';

/** Bits per element of each dtype, in the reference enum's order (the order is the sort key). */
const DTYPE_BITS: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

/** The reference implementation's limit on the header (MAX_HEADER_SIZE in tensor.rs). */
const MAX_HEADER_BYTES = 100_000_000;

/** The key of the string-to-string metadata map in the header. */
const METADATA_KEY = '__metadata__';

/** The fields a header entry has; the format's JSON schema allows no others. */
const ENTRY_FIELDS = ['dtype', 'shape', 'data_offsets'];

/** The typed arrays {@link serializeSafetensors} takes as a tensor's values. */
export type SafetensorsArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** One tensor of a parsed safetensors file, by reference into the file's bytes. */
export interface SafetensorsEntry {
  /** The tensor's name (its key in the header). */
  readonly name: string;
  /** The element type. */
  readonly dtype: SafetensorsDtype;
  /** The shape; `[]` is a scalar. */
  readonly shape: readonly number[];
  /** `[begin, end)` of the tensor's bytes, counted from the start of the data section. */
  readonly dataOffsets: readonly [number, number];
  /**
   * The tensor's raw little-endian bytes: a view into the parsed buffer, not a copy (so it may be
   * unaligned for its dtype, and changes with the buffer). {@link safetensorsValues} copies.
   */
  readonly bytes: Uint8Array;
}

/** What {@link parseSafetensors} finds in a file. */
export interface ParsedSafetensors {
  /** The tensors by name, in the order of their data (the order of `data_offsets`), any names. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  /** The `__metadata__` map; `{}` when the file has none. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Where the data section starts in the file: 8 + the header length N. */
  readonly dataStart: number;
}

/** One tensor for {@link serializeSafetensors}. */
export interface SafetensorsTensorInput {
  /** The element type to write. */
  readonly dtype: SafetensorsDtype;
  /** The shape; `[]` is a scalar. */
  readonly shape: readonly number[];
  /**
   * The values in row-major order: either the dtype's own typed array (`Float32Array` for F32,
   * `Float64Array` for F64, `Int8Array`, `Uint8Array` (also BOOL, as 0 and 1), `Int16Array`,
   * `Uint16Array` (also F16 and BF16, as bit patterns), `Int32Array`, `Uint32Array`,
   * `BigInt64Array`, `BigUint64Array`), or a `Uint8Array` of the raw little-endian bytes, for any
   * dtype.
   */
  readonly data: SafetensorsArray;
}

/** A tensor's values as tfjs holds them, from {@link safetensorsValues}. */
export interface SafetensorsValues {
  /** The tfjs dtype the values are for. */
  readonly dtype: 'float32' | 'int32' | 'bool';
  /** The shape. */
  readonly shape: number[];
  /** A new array, owned by the caller: `Float32Array`, `Int32Array`, or `Uint8Array` of 0 and 1. */
  readonly values: Float32Array | Int32Array | Uint8Array;
}

/** What {@link decodeSafetensors} returns. */
export interface DecodedSafetensors {
  /**
   * The tensors by name, new tensors the caller disposes; in the order of their data, except
   * that JavaScript lists integer-like names (`'0'`, `'1'`) first.
   */
  readonly tensors: Record<string, tf.Tensor>;
  /** The `__metadata__` map; `{}` when the file has none. */
  readonly metadata: Record<string, string>;
}

let hostIsLittleEndian: boolean | undefined;

/** Typed arrays are in host byte order; safetensors is little-endian. Decided on first use. */
function littleEndian(): boolean {
  hostIsLittleEndian ??= new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  return hostIsLittleEndian;
}

/** A fresh, aligned copy of `src`, each `size`-byte element converted between host and LE order. */
function copyLittleEndian(src: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(src.length);
  out.set(src);
  if (size > 1 && !littleEndian()) {
    for (let i = 0; i < out.length; i += size) out.subarray(i, i + size).reverse();
  }
  return out;
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BITS, value);
}

function dtypeRank(dtype: SafetensorsDtype): number {
  return Object.keys(DTYPE_BITS).indexOf(dtype);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isSize(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Compares two byte strings (UTF-8 order, the order of Rust's `String::cmp`). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * The number of bytes of `shape` elements of `dtype`, or a string saying why there is none
 * (overflow past 2^53, or a sub-byte dtype whose bits do not fill whole bytes).
 */
function byteLength(dtype: SafetensorsDtype, shape: readonly number[]): number | string {
  let count = 1;
  for (const d of shape) {
    count *= d;
    if (!Number.isSafeInteger(count)) return 'an element count that overflows';
  }
  const bits = count * DTYPE_BITS[dtype];
  if (!Number.isSafeInteger(bits)) return 'a byte count that overflows';
  if (bits % 8 !== 0) return `${count} elements of ${DTYPE_BITS[dtype]} bits, not whole bytes`;
  return bits / 8;
}

const shapeText = (shape: readonly unknown[]): string => `[${shape.map(String).join(', ')}]`;

/**
 * Finds a repeated key in any object of a JSON text that `JSON.parse` accepted (which keeps the
 * last of duplicates silently; the format forbids them). One pass with an explicit stack, so a
 * deeply nested hostile header cannot overflow the call stack.
 */
function findDuplicateKey(text: string): { path: string; key: string } | undefined {
  interface Frame {
    readonly keys: Set<string> | undefined; // undefined for arrays
    expectKey: boolean;
    path: string;
    current: string;
  }
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const path = top === undefined ? '' : top.current;
      stack.push({
        keys: c === 0x7b ? new Set() : undefined,
        expectKey: c === 0x7b,
        path,
        current: path,
      });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */ && top?.keys !== undefined) {
      top.expectKey = true;
    } else if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22)
        j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      if (top?.keys !== undefined && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { path: top.path, key };
        top.keys.add(key);
        top.expectKey = false;
        top.current = `${top.path}[${JSON.stringify(key)}]`;
      }
      i = j;
    }
  }
  return undefined;
}

/**
 * Parses and validates a safetensors file without copying its data, enforcing the format's
 * rules as the reference implementation does (safetensors/src/tensor.rs): a header of at most
 * 100,000,000 bytes that fits in the file, valid UTF-8 JSON (whitespace before and after the
 * object is allowed, as the reference reader allows it), no duplicate keys, string-only
 * `__metadata__`, entries with exactly `dtype`, `shape` and `data_offsets` (the format's JSON
 * schema), a known dtype, `end - begin` equal to the shape's element count times the dtype's size,
 * and offsets that cover the data section exactly: contiguous from 0 in offset order, no gap, no
 * overlap, nothing past the end, no uncovered trailing bytes. Sizes must be safe integers
 * (< 2^53). A hostile or truncated file raises a {@link ContrastiveError} and allocates nothing
 * in proportion to what its header claims.
 *
 * @param bytes - the whole file. A view at any offset (a Node `Buffer`, a subarray) is fine.
 * @returns the entries (each with a zero-copy `bytes` view into `bytes`), the metadata, and where
 *   the data section starts.
 * @throws {@link ContrastiveError} naming what is wrong (the tensor, the field, the offsets).
 *
 * @example
 * ```ts
 * import { parseSafetensors, safetensorsValues, serializeSafetensors } from 'tfjs-contrastive';
 *
 * const bytes = serializeSafetensors({
 *   'bn.running_mean': { dtype: 'F32', shape: [2], data: new Float32Array([0.5, -1]) },
 * }); // or a PyTorch state dict's file
 * const file = parseSafetensors(bytes);
 * for (const [name, entry] of file.entries) console.log(name, entry.dtype, entry.shape);
 * const { values } = safetensorsValues(file.entries.get('bn.running_mean')!); // Float32Array [0.5, -1]
 * ```
 */
export function parseSafetensors(bytes: Uint8Array): ParsedSafetensors {
  return parse('parseSafetensors', bytes);
}

function parse(caller: string, bytes: unknown): ParsedSafetensors {
  const fail = (argument: string, expected: string, received: string): never => {
    throw new ContrastiveError({ caller, argument, expected, received });
  };
  if (!(bytes instanceof Uint8Array)) {
    return fail('bytes', 'a Uint8Array holding a safetensors file', describeValue(bytes));
  }
  const total = bytes.length;
  if (total < 8) {
    return fail(
      'bytes',
      'a safetensors file, which starts with an 8-byte header length',
      `${total} bytes (truncated)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const n = high * 2 ** 32 + low; // exact: < 2^64, and only compared while small
  if (high !== 0 || n > MAX_HEADER_BYTES) {
    return fail(
      'bytes',
      `a safetensors file with a header of at most ${MAX_HEADER_BYTES} bytes`,
      `a header length of ${high === 0 ? String(n) : `${String(n)} (about)`} bytes`,
    );
  }
  if (8 + n > total) {
    return fail(
      'bytes',
      'a safetensors file whose header fits in the file',
      `a header length of ${n} bytes in a file of ${total} bytes (truncated, or not a safetensors file)`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, 8 + n),
    );
  } catch {
    return fail(
      'bytes',
      'a safetensors file with a UTF-8 header',
      'a header that is not valid UTF-8',
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(
      'bytes',
      'a safetensors file with a JSON header',
      `a header that is not valid JSON (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  if (!isPlainObject(header)) {
    return fail('bytes', 'a safetensors file whose header is a JSON object', describeJson(header));
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    return fail(
      `header${duplicate.path}`,
      'an object without duplicate keys (the format forbids them)',
      `the key ${JSON.stringify(duplicate.key)} twice`,
    );
  }

  const metadata: Record<string, string> = {};
  const rawMetadata = header[METADATA_KEY];
  // The reference reader takes a null map as no map (serde's Option).
  if (rawMetadata !== undefined && rawMetadata !== null) {
    if (!isPlainObject(rawMetadata)) {
      return fail(
        `header[${JSON.stringify(METADATA_KEY)}]`,
        'an object of strings',
        describeJson(rawMetadata),
      );
    }
    for (const [key, value] of Object.entries(rawMetadata)) {
      if (typeof value !== 'string') {
        return fail(
          `header[${JSON.stringify(METADATA_KEY)}][${JSON.stringify(key)}]`,
          'a string',
          describeJson(value),
        );
      }
      Object.defineProperty(metadata, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }

  interface Pending {
    readonly name: string;
    readonly dtype: SafetensorsDtype;
    readonly shape: number[];
    readonly begin: number;
    readonly end: number;
  }
  const pending: Pending[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const at = `header[${JSON.stringify(name)}]`;
    if (!isPlainObject(info)) {
      return fail(at, 'a tensor entry { dtype, shape, data_offsets }', describeJson(info));
    }
    for (const field of Object.keys(info)) {
      if (!ENTRY_FIELDS.includes(field)) {
        return fail(
          at,
          'an entry with only dtype, shape and data_offsets',
          `a field ${JSON.stringify(field)}`,
        );
      }
    }
    const { dtype, shape, data_offsets: offsets } = info;
    if (!isDtype(dtype)) {
      return fail(
        `${at}.dtype`,
        `a safetensors dtype (${Object.keys(DTYPE_BITS).join(', ')})`,
        describeJson(dtype),
      );
    }
    if (!Array.isArray(shape) || !shape.every(isSize)) {
      return fail(
        `${at}.shape`,
        'an array of non-negative integers below 2^53',
        describeJson(shape),
      );
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize)) {
      return fail(
        `${at}.data_offsets`,
        'two non-negative integers [begin, end] below 2^53',
        describeJson(offsets),
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) {
      return fail(`${at}.data_offsets`, '[begin, end] with begin <= end', shapeText(offsets));
    }
    const size = byteLength(dtype, shape);
    if (typeof size === 'string') {
      return fail(
        `${at}.shape`,
        `a shape whose ${dtype} data fits in whole bytes`,
        `${shapeText(shape)}: ${size}`,
      );
    }
    if (end - begin !== size) {
      return fail(
        `${at}.data_offsets`,
        `offsets spanning the ${size} bytes of shape ${shapeText(shape)} in ${dtype}`,
        `${shapeText(offsets)}, ${end - begin} bytes`,
      );
    }
    pending.push({ name, dtype, shape: shape, begin, end });
  }

  // In data order; the reference sorts by (begin, end), so empty tensors come before the
  // non-empty one that starts at the same offset.
  pending.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataStart = 8 + n;
  const dataLength = total - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let position = 0;
  let previous: string | undefined;
  for (const p of pending) {
    const at = `header[${JSON.stringify(p.name)}].data_offsets`;
    const after =
      previous === undefined
        ? 'the start of the data section'
        : `tensor ${JSON.stringify(previous)}`;
    if (p.begin < position) {
      return fail(
        at,
        `offsets starting at byte ${position}, right after ${after}`,
        `[${p.begin}, ${p.end}], which overlaps ${after}`,
      );
    }
    if (p.begin > position) {
      return fail(
        at,
        `offsets starting at byte ${position}, right after ${after}`,
        `[${p.begin}, ${p.end}], which leaves a gap of ${p.begin - position} bytes`,
      );
    }
    if (p.end > dataLength) {
      return fail(
        at,
        `offsets within the data section (${dataLength} bytes)`,
        `[${p.begin}, ${p.end}] (the file is truncated, or the offsets are wrong)`,
      );
    }
    entries.set(p.name, {
      name: p.name,
      dtype: p.dtype,
      shape: p.shape,
      dataOffsets: [p.begin, p.end],
      bytes: bytes.subarray(dataStart + p.begin, dataStart + p.end),
    });
    position = p.end;
    previous = p.name;
  }
  if (position !== dataLength) {
    return fail(
      'bytes',
      `a data section covered exactly by the tensors' offsets (${position} bytes)`,
      `${dataLength} bytes, ${dataLength - position} of them not in any tensor`,
    );
  }
  return { entries, metadata, dataStart };
}

function describeJson(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** IEEE half precision to float32, exactly (every half is a float32). NaN payloads are not kept. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const INT32_MAX = 2 ** 31 - 1;

/**
 * A tensor's values as tfjs holds them, copied out of a parsed file (so aligned, and independent
 * of the file's buffer): F32 as float32; F16 and BF16 widened to float32 exactly; F64 rounded to
 * float32 (a finite value beyond float32's range is an error rather than an infinity); I32 as
 * int32; I8, U8, I16, U16 widened to int32; U32, I64 and U64 narrowed to int32, with an error
 * naming the first value outside [-2^31, 2^31); BOOL as bool (any non-zero byte is true). U8 is
 * int32, not bool: tfjs has no uint8 dtype, and PyTorch's uint8 tensors are numbers (images).
 *
 * @param entry - an entry of {@link parseSafetensors}.
 * @returns the tfjs dtype, the shape, and a new typed array of the values.
 * @throws {@link ContrastiveError} for a dtype tfjs cannot hold (the 8-, 6- and 4-bit floats,
 *   C64), or a value that does not fit.
 *
 * @example
 * ```ts
 * import { parseSafetensors, safetensorsValues, serializeSafetensors } from 'tfjs-contrastive';
 *
 * const bytes = serializeSafetensors({
 *   'bn.num_batches_tracked': { dtype: 'I64', shape: [], data: new BigInt64Array([42n]) },
 * });
 * const entry = parseSafetensors(bytes).entries.get('bn.num_batches_tracked')!;
 * const { dtype, values } = safetensorsValues(entry); // 'int32', Int32Array [42]
 * ```
 */
export function safetensorsValues(entry: SafetensorsEntry): SafetensorsValues {
  return valuesOf('safetensorsValues', entry);
}

function valuesOf(caller: string, entry: SafetensorsEntry): SafetensorsValues {
  const { name, dtype, bytes } = entry;
  const shape = [...entry.shape];
  const at = `tensor ${JSON.stringify(name)}`;
  const fail = (expected: string, received: string): never => {
    throw new ContrastiveError({ caller, argument: at, expected, received });
  };
  const size = DTYPE_BITS[dtype] / 8;
  const data = copyLittleEndian(bytes, size);
  const n = data.length / size;
  const outOfRange = `${dtype} values within int32 (tfjs's only integer type)`;
  switch (dtype) {
    case 'F32':
      return { dtype: 'float32', shape, values: new Float32Array(data.buffer) };
    case 'F16': {
      const bits = new Uint16Array(data.buffer);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(bits[i] as number);
      return { dtype: 'float32', shape, values: out };
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: widening is a shift, exact, payloads included.
      const bits = new Uint16Array(data.buffer);
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = (bits[i] as number) << 16;
      return { dtype: 'float32', shape, values: out };
    }
    case 'F64': {
      const src = new Float64Array(data.buffer);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i] as number;
        out[i] = v;
        if (Number.isFinite(v) && !Number.isFinite(out[i])) {
          return fail(
            'F64 values within float32 range (tfjs has no float64)',
            `${v} at flat index ${i}`,
          );
        }
      }
      return { dtype: 'float32', shape, values: out };
    }
    case 'I32':
      return { dtype: 'int32', shape, values: new Int32Array(data.buffer) };
    case 'I8':
      return { dtype: 'int32', shape, values: Int32Array.from(new Int8Array(data.buffer)) };
    case 'U8':
      return { dtype: 'int32', shape, values: Int32Array.from(data) };
    case 'I16':
      return { dtype: 'int32', shape, values: Int32Array.from(new Int16Array(data.buffer)) };
    case 'U16':
      return { dtype: 'int32', shape, values: Int32Array.from(new Uint16Array(data.buffer)) };
    case 'U32': {
      const src = new Uint32Array(data.buffer);
      const bad = src.findIndex((v) => v > INT32_MAX);
      if (bad >= 0) return fail(outOfRange, `${src[bad]} at flat index ${bad}`);
      return { dtype: 'int32', shape, values: new Int32Array(data.buffer) };
    }
    case 'I64':
    case 'U64': {
      // A value fits when its high word is its low word's sign extension (I64), or 0 over a
      // non-negative low word (U64): two int32 reads per element, a BigInt only for the message.
      const words = new Int32Array(data.buffer);
      const [lo, hi] = littleEndian() ? [0, 1] : [1, 0];
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const low = words[2 * i + lo] as number;
        const high = words[2 * i + hi] as number;
        if (dtype === 'I64' ? high !== low >> 31 : high !== 0 || low < 0) {
          const big = (
            dtype === 'I64' ? new BigInt64Array(data.buffer) : new BigUint64Array(data.buffer)
          )[i];
          return fail(outOfRange, `${String(big)} at flat index ${i}`);
        }
        out[i] = low;
      }
      return { dtype: 'int32', shape, values: out };
    }
    case 'BOOL':
      return { dtype: 'bool', shape, values: data.map((b) => (b === 0 ? 0 : 1)) };
    default:
      return fail(
        'a dtype tfjs can hold (F32, F16, BF16, F64, I8-I64, U8-U64, BOOL)',
        `${dtype}; read its raw bytes from parseSafetensors(bytes).entries.get(name).bytes`,
      );
  }
}

/** The typed array that holds each dtype's values directly, if any. */
function arrayTypeOf(dtype: SafetensorsDtype): string | undefined {
  switch (dtype) {
    case 'BOOL':
    case 'U8':
      return 'Uint8Array';
    case 'I8':
      return 'Int8Array';
    case 'I16':
      return 'Int16Array';
    case 'U16':
    case 'F16':
    case 'BF16':
      return 'Uint16Array';
    case 'I32':
      return 'Int32Array';
    case 'U32':
      return 'Uint32Array';
    case 'F32':
      return 'Float32Array';
    case 'F64':
      return 'Float64Array';
    case 'I64':
      return 'BigInt64Array';
    case 'U64':
      return 'BigUint64Array';
    default:
      return undefined;
  }
}

/**
 * Writes a safetensors file from typed arrays, byte for byte as the reference writer
 * (safetensors/src/tensor.rs `serialize`) does: tensors ordered by decreasing dtype alignment,
 * then by name in UTF-8 byte order, laid out contiguously; the header compact JSON with
 * `__metadata__` first, padded with spaces to a multiple of 8 bytes so every tensor starts
 * 8-byte aligned in the file. The reference writer emits metadata in hash-map order; this one
 * sorts the keys, so the output is a function of the input alone (checkpoints compare bit for bit).
 *
 * @param tensors - the tensors by name ({@link SafetensorsTensorInput}: dtype, shape, values).
 * @param metadata - the `__metadata__` map of strings. Default none (no `__metadata__` key is
 *   written when it is empty).
 * @returns the file's bytes.
 * @throws {@link ContrastiveError} for an unknown dtype, a shape that is not a list of
 *   non-negative integers, values of the wrong array type or length, a tensor named
 *   `__metadata__`, a non-string metadata value, or a header over 100,000,000 bytes.
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from 'tfjs-contrastive';
 *
 * const bytes = serializeSafetensors(
 *   { 'bn.num_batches_tracked': { dtype: 'I64', shape: [], data: new BigInt64Array([42n]) } },
 *   { format: 'pt' },
 * );
 * ```
 */
export function serializeSafetensors(
  tensors: Readonly<Record<string, SafetensorsTensorInput>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  return serialize('serializeSafetensors', tensors, metadata);
}

function serialize(caller: string, tensors: unknown, metadata: unknown): Uint8Array {
  const fail = (argument: string, expected: string, received: string): never => {
    throw new ContrastiveError({ caller, argument, expected, received });
  };
  if (!isPlainObject(tensors))
    return fail('tensors', 'an object of named tensors', describeValue(tensors));
  if (!isPlainObject(metadata)) {
    return fail('metadata', 'an object of strings', describeValue(metadata));
  }
  const encoder = new TextEncoder();
  interface Prepared {
    readonly name: string;
    readonly key: Uint8Array;
    readonly dtype: SafetensorsDtype;
    readonly shape: readonly number[];
    readonly raw: Uint8Array;
  }
  const prepared: Prepared[] = [];
  for (const [name, input] of Object.entries(tensors)) {
    const at = `tensors[${JSON.stringify(name)}]`;
    if (name === METADATA_KEY) {
      return fail(
        'tensors',
        `tensor names other than ${JSON.stringify(METADATA_KEY)} (the metadata key)`,
        `a tensor named ${METADATA_KEY}`,
      );
    }
    if (!isPlainObject(input))
      return fail(at, 'an object { dtype, shape, data }', describeValue(input));
    const { dtype, shape, data } = input;
    if (!isDtype(dtype)) {
      return fail(
        `${at}.dtype`,
        `a safetensors dtype (${Object.keys(DTYPE_BITS).join(', ')})`,
        describeValue(dtype),
      );
    }
    if (!Array.isArray(shape) || !shape.every(isSize)) {
      return fail(`${at}.shape`, 'an array of non-negative integers', describeValue(shape));
    }
    const size = byteLength(dtype, shape);
    if (typeof size === 'string') {
      return fail(
        `${at}.shape`,
        `a shape whose ${dtype} data fits in whole bytes`,
        `${shapeText(shape)}: ${size}`,
      );
    }
    const own = arrayTypeOf(dtype);
    if (!ArrayBuffer.isView(data) || data instanceof DataView) {
      return fail(`${at}.data`, `a ${own ?? 'Uint8Array'} of the values`, describeValue(data));
    }
    const typeName = data.constructor.name;
    const isRaw = data instanceof Uint8Array || typeName === 'Uint8Array';
    if (!isRaw && typeName !== own) {
      return fail(
        `${at}.data`,
        own === undefined
          ? `a Uint8Array of the raw ${dtype} bytes`
          : `a ${own} of the values, or a Uint8Array of their raw bytes`,
        `a ${typeName}`,
      );
    }
    if (data.byteLength !== size) {
      return fail(
        `${at}.data`,
        `the ${size} bytes of shape ${shapeText(shape)} in ${dtype}`,
        `a ${typeName} of ${data.byteLength} bytes`,
      );
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // A Uint8Array is already little-endian bytes; a wider array is in host order. BOOL is
    // written as 0 and 1 whatever non-zero byte stands for true (PyTorch reads other bytes as UB).
    const raw =
      dtype === 'BOOL'
        ? bytes.map((b) => (b === 0 ? 0 : 1))
        : isRaw || littleEndian()
          ? bytes // copied into the file below; no copy needed here
          : copyLittleEndian(bytes, DTYPE_BITS[dtype] / 8);
    prepared.push({ name, key: encoder.encode(name), dtype, shape: shape, raw });
  }
  prepared.sort((a, b) => dtypeRank(b.dtype) - dtypeRank(a.dtype) || compareBytes(a.key, b.key));

  const parts: string[] = [];
  const metadataKeys = Object.keys(metadata)
    .map((k) => ({ k, bytes: encoder.encode(k) }))
    .sort((a, b) => compareBytes(a.bytes, b.bytes));
  if (metadataKeys.length > 0) {
    const items = metadataKeys.map(({ k }) => {
      const v = metadata[k];
      if (typeof v !== 'string') {
        return fail(
          `metadata[${JSON.stringify(k)}]`,
          'a string (safetensors metadata maps strings to strings)',
          describeValue(v),
        );
      }
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"${METADATA_KEY}":{${items.join(',')}}`);
  }
  let offset = 0;
  for (const p of prepared) {
    const end = offset + p.raw.length;
    parts.push(
      `${JSON.stringify(p.name)}:{"dtype":"${p.dtype}","shape":[${p.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = encoder.encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_BYTES) {
    return fail(
      'metadata',
      `a header of at most ${MAX_HEADER_BYTES} bytes`,
      `a header of ${n} bytes`,
    );
  }
  const out = new Uint8Array(8 + n + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, n, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let at = 8 + n;
  for (const p of prepared) {
    out.set(p.raw, at);
    at += p.raw.length;
  }
  return out;
}

/**
 * Decodes a safetensors file into new tfjs tensors, after validating it as
 * {@link parseSafetensors} does. The dtypes map as {@link safetensorsValues} says: F32, F16, BF16
 * (exactly) and F64 (rounded) to float32; the integer types to int32 (U32, I64, U64 checked to fit);
 * BOOL to bool. The values are copied, so the tensors do not depend on `bytes` afterwards, and
 * `bytes` may sit at any offset in its buffer.
 *
 * @param bytes - the whole file.
 * @returns the tensors by name, in the order of their data, owned by the caller (dispose them),
 *   and the metadata.
 * @throws {@link ContrastiveError} for an invalid file, a dtype tfjs cannot hold, or a value that
 *   does not fit; no tensor is left allocated then.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { decodeSafetensors, encodeSafetensors } from 'tfjs-contrastive';
 *
 * const keys = tf.zeros([4, 2]);
 * const bytes = await encodeSafetensors({ 'queue.keys': keys }, { step: '10' });
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * console.log(metadata.step, tensors['queue.keys']?.shape); // '10' [4, 2]
 * tf.dispose([keys, ...Object.values(tensors)]);
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  const caller = 'decodeSafetensors';
  const parsed = parse(caller, bytes);
  // All values first: a failure then leaves no tensor behind.
  const values = [...parsed.entries.values()].map((e) => [e.name, valuesOf(caller, e)] as const);
  const pairs = values.map(([name, v]) => [name, tf.tensor(v.values, v.shape, v.dtype)] as const);
  return { tensors: Object.fromEntries(pairs), metadata: parsed.metadata };
}

/**
 * Encodes tfjs tensors as a safetensors file: float32 as F32, int32 as I32, bool as BOOL (one
 * byte, 0 or 1: what PyTorch loads as `torch.bool`). The bytes are a function of the names,
 * dtypes, shapes, values and metadata alone (layout as {@link serializeSafetensors}), so two
 * checkpoints of the same state are identical files. Each tensor is read back with
 * `await tensor.data()` (no GPU stall on webgl/webgpu); the tensors are not disposed.
 *
 * @param tensors - the tensors by name; names may be any string except `__metadata__`.
 * @param metadata - string-to-string metadata (say the library version, the step). Default none.
 * @returns the file's bytes.
 * @throws {@link ContrastiveError} for a value that is not a live tensor, a string or complex64
 *   tensor, a tensor named `__metadata__`, or a non-string metadata value.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { decodeSafetensors, encodeSafetensors } from 'tfjs-contrastive';
 *
 * const w = tf.ones([2, 3]);
 * const bytes = await encodeSafetensors({ 'head.kernel': w }, { step: '1000' });
 * const { tensors, metadata } = decodeSafetensors(bytes); // metadata.step === '1000'
 * tf.dispose([w, ...Object.values(tensors)]);
 * ```
 */
export async function encodeSafetensors(
  tensors: Readonly<Record<string, tf.Tensor>>,
  metadata: Readonly<Record<string, string>> = {},
): Promise<Uint8Array> {
  const caller = 'encodeSafetensors';
  if (!isPlainObject(tensors)) {
    throw new ContrastiveError({
      caller,
      argument: 'tensors',
      expected: 'an object of named tensors',
      received: describeValue(tensors),
    });
  }
  const named = Object.entries(tensors);
  for (const [name, t] of named) {
    checkTensor(caller, `tensors[${JSON.stringify(name)}]`, t, {
      dtype: ['float32', 'int32', 'bool'],
    });
  }
  const DTYPE: Readonly<Record<string, SafetensorsDtype>> = {
    float32: 'F32',
    int32: 'I32',
    bool: 'BOOL',
  };
  const inputs = await Promise.all(
    named.map(async ([name, t]) => {
      const read = await t.data();
      // The array type a backend hands back is not guaranteed for every dtype: normalise it.
      const data =
        t.dtype === 'float32'
          ? read instanceof Float32Array
            ? read
            : Float32Array.from(read as ArrayLike<number>)
          : t.dtype === 'int32'
            ? read instanceof Int32Array
              ? read
              : Int32Array.from(read as ArrayLike<number>)
            : Uint8Array.from(read as ArrayLike<number>, (b) => (b === 0 ? 0 : 1));
      return [name, { dtype: DTYPE[t.dtype] as SafetensorsDtype, shape: t.shape, data }] as const;
    }),
  );
  // Object.fromEntries keeps a name such as '__proto__' an own key (assignment would not).
  return serialize(caller, Object.fromEntries(inputs), metadata);
}
