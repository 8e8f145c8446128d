/**
 * Bundles a one-import application with esbuild against the built package and checks which
 * modules end up in it: importing one function must pull in neither tfjs-layers nor a backend.
 * tfjs-core stays external, as in an application that already depends on it.
 */
import { build } from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-bundle-'));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

async function bundledInputs(
  source: string,
): Promise<{ inputs: string[]; bytes: number; text: string }> {
  const entry = join(work, `entry-${Math.random().toString(36).slice(2)}.js`);
  writeFileSync(entry, source);
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    metafile: true,
    treeShaking: true,
    minify: true,
    external: ['@tensorflow/tfjs-core'],
    alias: {
      'tfjs-contrastive/losses': join(root, 'dist/losses.js'),
      'tfjs-contrastive/state': join(root, 'dist/state.js'),
      'tfjs-contrastive/layers': join(root, 'dist/layers.js'),
      'tfjs-contrastive/io': join(root, 'dist/io.js'),
      'tfjs-contrastive/augment': join(root, 'dist/augment.js'),
      'tfjs-contrastive': join(root, 'dist/index.js'),
    },
    nodePaths: [join(root, 'node_modules')],
    logLevel: 'silent',
  });
  // The modules that contribute code to the output (esbuild parses more than it keeps).
  const inputs = Object.values(result.metafile.outputs).flatMap((o) =>
    Object.entries(o.inputs)
      .filter(([, v]) => v.bytesInOutput > 0)
      .map(([k]) => k),
  );
  const bytes = result.outputFiles.reduce((s, f) => s + f.contents.length, 0);
  const text = result.outputFiles.map((f) => f.text).join('\n');
  return { inputs, bytes, text };
}

const isLayers = (p: string): boolean => p.includes('@tensorflow/tfjs-layers');
const isBackend = (p: string): boolean => /@tensorflow\/tfjs-backend-/.test(p);

describe('tree shaking of the built package', () => {
  it('a single core function pulls in no layers code and no backend', async () => {
    const { inputs } = await bundledInputs(
      "import { l2Normalize } from 'tfjs-contrastive';\nconsole.log(l2Normalize);\n",
    );
    expect(inputs.filter(isLayers)).toEqual([]);
    expect(inputs.filter(isBackend)).toEqual([]);
  });

  it('a single loss pulls in no layers code, no backend and no other loss', async () => {
    const named = [
      'ntXentLoss',
      'invaSpreadLoss',
      'cmcLoss',
      'supConLoss',
      'byolLoss',
      'swavLoss',
      'dinoLoss',
      'selectBackend',
    ];
    for (const [loss, from] of [
      ['ntXentLoss', 'tfjs-contrastive'],
      ['ntXentLoss', 'tfjs-contrastive/losses'],
      ['byolLoss', 'tfjs-contrastive/losses'],
      ['dinoLoss', 'tfjs-contrastive'],
    ] as const) {
      const { inputs, text } = await bundledInputs(
        `import { ${loss} } from '${from}';\nconsole.log(${loss});\n`,
      );
      // Each loss names itself in its error messages, so its code is recognisable when present.
      expect(text).toContain(`"${loss}"`);
      for (const other of named.filter((n) => n !== loss)) {
        expect(text, `${loss} bundle contains ${other}`).not.toContain(`"${other}"`);
      }
      expect(inputs.filter(isLayers)).toEqual([]);
      expect(inputs.filter(isBackend)).toEqual([]);
    }
  });

  it('the folder IO handler pulls in no layers code; a custom layer does', async () => {
    const io = await bundledInputs(
      "import { folderIO } from 'tfjs-contrastive/io';\nconsole.log(folderIO);\n",
    );
    expect(io.inputs.filter(isLayers)).toEqual([]);
    expect(io.inputs.filter(isBackend)).toEqual([]);
    const layer = await bundledInputs(
      "import { L2Normalize } from 'tfjs-contrastive/layers';\nconsole.log(L2Normalize);\n",
    );
    expect(layer.inputs.some(isLayers)).toBe(true);
    expect(layer.inputs.filter(isBackend)).toEqual([]);
  });

  it('selectBackend brings in no backend package (it loads them on demand, hidden from bundlers)', async () => {
    const { inputs } = await bundledInputs(
      "import { selectBackend } from 'tfjs-contrastive';\nconsole.log(selectBackend);\n",
    );
    expect(inputs.filter(isBackend)).toEqual([]);
  });

  it('the check can fail: an app that imports a backend package does bundle it', async () => {
    const { inputs } = await bundledInputs(
      "import '@tensorflow/tfjs-backend-wasm';\nimport { selectBackend } from 'tfjs-contrastive';\nconsole.log(selectBackend);\n",
    );
    expect(inputs.some((p) => p.includes('@tensorflow/tfjs-backend-wasm'))).toBe(true);
  });
});
