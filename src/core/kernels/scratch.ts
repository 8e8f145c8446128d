/**
 * @internal Composition of kernels inside a kernel. A kernel override receives TensorInfos and the
 * backend, not Tensors; it builds its result by calling other kernels' functions directly, the way
 * tfjs backends compose their own kernels. Intermediate results are not tracked by the engine, so
 * a {@link Scratch} records each one and frees them all when the override returns.
 */
import * as tf from '@tensorflow/tfjs-core';

export type Info = tf.TensorInfo;
export type Attrs = Record<string, unknown>;

/** The part of a tfjs backend that overrides use (structural, so any backend object fits). */
export interface BackendLike {
  write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId;
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  incRef(dataId: tf.DataId): void;
}

/** tf.getKernel, typed as what it returns: undefined for a kernel that is not registered. */
export function lookupKernel(name: string, backendName: string): tf.KernelConfig | undefined {
  const found: tf.KernelConfig | undefined = tf.getKernel(name, backendName);
  return found;
}

/** The input called `name` of a kernel call. */
export function need(inputs: Record<string, Info | undefined>, name: string): Info {
  const t = inputs[name];
  if (t === undefined) throw new Error(`tfjs-contrastive: kernel input ${name} is missing`);
  return t;
}

/** The kernels an override replaced, by kernel name, for the backend it is registered on. */
export type Originals = ReadonlyMap<string, tf.KernelConfig>;

export class Scratch {
  private readonly made: Info[] = [];

  constructor(
    readonly backend: BackendLike,
    readonly backendName: string,
    private readonly originals: Originals,
  ) {}

  /**
   * Runs kernel `name` on this backend: the original implementation when the library replaced it
   * (an override never calls itself), else the registered one.
   */
  run(name: string, inputs: Record<string, Info> | Info[], attrs: Attrs = {}): Info {
    const config = this.originals.get(name) ?? lookupKernel(name, this.backendName);
    if (config === undefined) {
      throw new Error(`tfjs-contrastive: kernel ${name} is not registered for ${this.backendName}`);
    }
    const out = config.kernelFunc({
      // AddN takes its inputs as an array, as tfjs passes them.
      inputs: inputs as tf.NamedTensorInfoMap,
      backend: this.backend,
      attrs: attrs as tf.NamedAttrMap,
    });
    if (Array.isArray(out)) throw new Error(`tfjs-contrastive: ${name} returned several outputs`);
    this.made.push(out);
    return out;
  }

  reshape(x: Info, shape: number[]): Info {
    return sameShape(x.shape, shape) ? x : this.run('Reshape', { x }, { shape });
  }

  transpose(x: Info, perm: number[]): Info {
    return perm.every((p, i) => p === i) ? x : this.run('Transpose', { x }, { perm });
  }

  /** Zero (or `value`) padding; `paddings` as [before, after] per axis, all >= 0. */
  pad(x: Info, paddings: [number, number][], value = 0): Info {
    if (paddings.every(([a, b]) => a === 0 && b === 0)) return x;
    return this.run('PadV2', { x }, { paddings, constantValue: value });
  }

  slice(x: Info, begin: number[], size: number[]): Info {
    if (begin.every((b) => b === 0) && sameShape(x.shape, size)) return x;
    return this.run('Slice', { x }, { begin, size });
  }

  /** Takes ownership of `info`, made outside {@link Scratch.run} (freed with the rest). */
  own(info: Info): Info {
    this.made.push(info);
    return info;
  }

  /** A constant scalar owned by this scratch. */
  scalar(value: number, dtype: tf.DataType = 'float32'): Info {
    return this.fill([], value, dtype);
  }

  /** A constant tensor of `shape` filled with `value`, owned by this scratch. */
  fill(shape: number[], value: number, dtype: tf.DataType = 'float32'): Info {
    const size = prod(shape);
    const values =
      dtype === 'int32' ? new Int32Array(size).fill(value) : new Float32Array(size).fill(value);
    const info = { dataId: this.backend.write(values, shape, dtype), shape, dtype };
    this.made.push(info);
    return info;
  }

  /**
   * Hands `result` to the caller (it is not freed) and frees every other intermediate. A result
   * that is one of the override's inputs (a no-op reshape, say) gets its own reference.
   */
  finish(result: Info, inputs: readonly Info[]): Info {
    const index = this.made.lastIndexOf(result);
    if (index >= 0) this.made.splice(index, 1);
    else if (inputs.some((x) => x.dataId === result.dataId)) {
      // A view of an input: the engine will count the output as a new reference.
      this.backend.incRef(result.dataId);
    }
    this.dispose();
    return result;
  }

  dispose(): void {
    for (const info of this.made.splice(0)) this.backend.disposeData(info.dataId);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Product of the entries. */
export function prod(xs: readonly number[]): number {
  return xs.reduce((p, x) => p * x, 1);
}
