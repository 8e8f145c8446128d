/**
 * Saving and loading tfjs models to and from a folder in Node, without tfjs-node (whose
 * `file://` handler is the only one tfjs ships for the file system).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../core/errors.js';
import { describeValue } from '../core/checks.js';
import { nodeBuiltin } from '../core/node-builtins.js';

interface Fs {
  promises: {
    mkdir(path: string, options: { recursive: boolean }): Promise<unknown>;
    writeFile(path: string, data: string | Uint8Array): Promise<void>;
    readFile(path: string): Promise<Uint8Array>;
    readFile(path: string, encoding: 'utf8'): Promise<string>;
    rename(from: string, to: string): Promise<void>;
  };
}
interface Path {
  join(...parts: string[]): string;
}

/**
 * The model file a {@link folderIO} handler writes.
 *
 * @example
 * ```ts
 * import { MODEL_FILE, WEIGHTS_FILE } from 'tfjs-contrastive/io';
 * // after model.save(folderIO('./ckpt')): ./ckpt/model.json and ./ckpt/weights.bin
 * const files = [MODEL_FILE, WEIGHTS_FILE];
 * ```
 */
export const MODEL_FILE = 'model.json';
/**
 * The weights file next to it.
 *
 * @example
 * ```ts
 * import { WEIGHTS_FILE } from 'tfjs-contrastive/io';
 * const weightsPath = `./ckpt/${WEIGHTS_FILE}`; // 'weights.bin'
 * ```
 */
export const WEIGHTS_FILE = 'weights.bin';

/**
 * An IO handler for `model.save` and `tf.loadLayersModel` that writes and reads a folder in Node:
 * `model.json` (topology, weight manifest, training config) and `weights.bin` (all weights, one
 * file). Each file is written to a temporary name and renamed, so an interrupted save never
 * leaves a half-written checkpoint. The folder is created if needed.
 *
 * Custom layers of this library must be registered before loading (`registerLayers()`, or
 * `import 'tfjs-contrastive/register'`).
 *
 * @param folder - the folder path.
 * @returns a tfjs `IOHandler` with `save` and `load`.
 *
 * @example
 * <!-- snippet setup="saved-encoder" -->
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { folderIO } from 'tfjs-contrastive/io';
 *
 * // model: a tfjs-layers model
 * await model.save(folderIO('./checkpoints/encoder'));
 * const again = await tfl.loadLayersModel(folderIO('./checkpoints/encoder'));
 * ```
 */
export function folderIO(folder: string): tf.io.IOHandler {
  if (typeof folder !== 'string' || folder.length === 0) {
    throw new ContrastiveError({
      caller: 'folderIO',
      argument: 'folder',
      expected: 'a non-empty folder path',
      received: describeValue(folder),
    });
  }
  const files = async (): Promise<{ fs: Fs; model: string; weights: string }> => {
    const fs = await nodeBuiltin<Fs>('fs');
    const path = await nodeBuiltin<Path>('path');
    return { fs, model: path.join(folder, MODEL_FILE), weights: path.join(folder, WEIGHTS_FILE) };
  };
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const { fs, model, weights } = await files();
      await fs.promises.mkdir(folder, { recursive: true });
      const data =
        artifacts.weightData === undefined
          ? new ArrayBuffer(0)
          : new tf.io.CompositeArrayBuffer(artifacts.weightData).slice();
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? 'tfjs-contrastive',
        convertedBy: artifacts.convertedBy ?? null,
        ...(artifacts.trainingConfig === undefined
          ? {}
          : { trainingConfig: artifacts.trainingConfig }),
        ...(artifacts.userDefinedMetadata === undefined
          ? {}
          : { userDefinedMetadata: artifacts.userDefinedMetadata }),
      };
      await fs.promises.writeFile(`${weights}.tmp`, new Uint8Array(data));
      await fs.promises.rename(`${weights}.tmp`, weights);
      await fs.promises.writeFile(`${model}.tmp`, JSON.stringify(json));
      await fs.promises.rename(`${model}.tmp`, model);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const { fs, model } = await files();
      const path = await nodeBuiltin<Path>('path');
      const json = JSON.parse(await fs.promises.readFile(model, 'utf8')) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const buffers = await Promise.all(
          manifest.flatMap((group) =>
            group.paths.map(async (p) => {
              const bytes = await fs.promises.readFile(path.join(folder, p));
              return new Uint8Array(bytes).buffer; // a copy that owns a plain ArrayBuffer
            }),
          ),
        );
        return [
          manifest.flatMap((g) => g.weights),
          new tf.io.CompositeArrayBuffer(buffers).slice(),
        ];
      });
    },
  };
}
