/**
 * @internal Kernels that tfjs-backend-wasm 4.22 lacks and that are rare (Einsum): run by the cpu
 * backend's implementation on copied data.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import { type BackendLike, type Info, lookupKernel } from './scratch.js';

/** A kernel function that runs the cpu backend's implementation of `name` on copies. */
export function viaCpu(name: string): tf.KernelFunc {
  return ({ inputs, backend: given, attrs }) => {
    const backend = given as BackendLike;
    const cpu = tf.findBackend('cpu') as BackendLike | null;
    const config = lookupKernel(name, 'cpu');
    if (cpu === null || config === undefined) {
      throw new ContrastiveError(
        {
          caller: `the ${name} kernel`,
          argument: 'backend',
          expected: 'able to run the cpu backend, which tfjs-contrastive uses for it on wasm',
          received: 'no registered cpu backend',
        },
        "Import '@tensorflow/tfjs-backend-cpu' once in the application.",
      );
    }
    const copy = (t: Info): Info => ({
      ...t,
      dataId: cpu.write(backend.readSync(t.dataId), t.shape, t.dtype),
    });
    // Some kernels (Einsum, AddN) take their inputs as an array.
    const received: unknown = inputs;
    const copies = Array.isArray(received)
      ? (received as Info[]).map(copy)
      : Object.fromEntries(
          Object.entries(inputs).flatMap(([k, t]) => (t === undefined ? [] : [[k, copy(t)]])),
        );
    const out = config.kernelFunc({ inputs: copies as tf.NamedTensorInfoMap, backend: cpu, attrs });
    const outs = Array.isArray(out) ? out : [out];
    const results = outs.map((o) => ({
      dataId: backend.write(cpu.readSync(o.dataId), o.shape, o.dtype),
      shape: o.shape,
      dtype: o.dtype,
    }));
    for (const t of [...Object.values<Info>(copies), ...outs]) cpu.disposeData(t.dataId);
    return Array.isArray(out) ? results : (results[0] ?? results);
  };
}
