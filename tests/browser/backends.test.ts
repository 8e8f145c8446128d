import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendInfo } from '../../src/index.js';
import { openTestPage, type BrowserPage } from './server.js';

async function select(p: BrowserPage, name: string, options: object = {}): Promise<BackendInfo> {
  return p.page.evaluate(
    async ([n, o]) =>
      window.lib.selectBackend(n as 'auto', {
        wasmModule: window.wasm,
        wasmPaths: '/wasm/',
        ...o,
      }),
    [name, options] as const,
  );
}

// l2Normalize of [[3, 4]] on the active backend, and the live tensor count around it.
async function probe(p: BrowserPage): Promise<{ y: number[]; leaked: number }> {
  return p.page.evaluate(async () => {
    const { tf, lib } = window;
    const before = tf.memory().numTensors;
    const x = tf.tensor2d([[3, 4]]);
    const y = lib.l2Normalize(x);
    const values = Array.from(await y.data());
    tf.dispose([x, y]);
    return { y: values, leaked: tf.memory().numTensors - before };
  });
}

describe('selectBackend in headless Chromium, cross-origin isolated', () => {
  let p: BrowserPage;
  let cores = 0;
  beforeAll(async () => {
    p = await openTestPage();
    cores = await p.page.evaluate(() => navigator.hardwareConcurrency);
  });
  afterAll(async () => {
    await p.close();
  });

  it('wasm: SIMD and one thread per core (at most 8), not halved', async () => {
    const info = await select(p, 'wasm');
    expect(info).toMatchObject({ name: 'wasm', environment: 'browser', simd: true, float32: true });
    expect(info.threads).toBe(Math.min(8, cores));
    expect(info.notes).toEqual([]);
    // The shadowing of navigator.hardwareConcurrency is gone again.
    expect(await p.page.evaluate(() => navigator.hardwareConcurrency)).toBe(cores);
    expect(await probe(p)).toEqual({
      y: [expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)],
      leaked: 0,
    });
  });

  it('wasm: the kernel fixes train a conv layer in the browser, as on cpu', async () => {
    const cpu = await select(p, 'cpu');
    expect(cpu.kernelFixes).toEqual(['Conv2DBackpropFilter']);
    const reference = await p.page.evaluate(() => window.convStepGradientNorms());
    const wasm = await select(p, 'wasm');
    expect(wasm.kernelFixes).toContain('Conv2DBackpropFilter');
    expect(wasm.kernelFixes).toContain('MaxPoolGrad');
    const norms = await p.page.evaluate(() => {
      const before = window.tf.memory().numTensors;
      const result = window.convStepGradientNorms();
      return { result, leaked: window.tf.memory().numTensors - before };
    });
    expect(norms.leaked).toBe(0);
    expect(reference.every((g) => g > 0)).toBe(true);
    norms.result.forEach((g, i) => {
      expect(Math.abs(g - reference[i]!)).toBeLessThan(1e-5 * reference[i]!);
    });
  });

  it('a tiny ViT with a DINO head saves to IndexedDB and loads with identical outputs (wasm)', async () => {
    await select(p, 'wasm');
    const result = await p.page.evaluate(async () => {
      const { tf, tfl, layers } = window;
      const before = tf.memory().numTensors;
      const backbone = layers.tinyVit({
        inputShape: [8, 8, 3],
        patchSize: 4,
        dim: 8,
        depth: 1,
        heads: 2,
      });
      const head = layers.dinoHead({ inputDim: 8, outDim: 10, hiddenDim: 6, bottleneckDim: 4 });
      const input = tfl.input({ shape: [8, 8, 3] });
      const model = tfl.model({
        inputs: input,
        outputs: head.apply(backbone.apply(input)) as never,
      });
      await model.save('indexeddb://tfjs-contrastive-test');
      const loaded = await tfl.loadLayersModel('indexeddb://tfjs-contrastive-test');
      const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 1);
      const ya = model.predict(x) as typeof x;
      const yb = loaded.predict(x) as typeof x;
      const a = Array.from(ya.dataSync());
      const b = Array.from(yb.dataSync());
      tf.dispose([x, ya, yb]);
      model.dispose();
      loaded.dispose();
      return {
        same: a.join() === b.join(),
        size: a.length,
        leaked: tf.memory().numTensors - before,
      };
    });
    expect(result).toEqual({ same: true, size: 20, leaked: 0 });
  });

  it('wasm: a SimCLR head (batch norm without offset) trains, and a tiny ViT takes a local-crop size', async () => {
    await select(p, 'wasm');
    const result = await p.page.evaluate(() => {
      const { tf, layers } = window;
      const before = tf.memory().numTensors;
      const backbone = layers.tinyVit({
        inputShape: [8, 8, 3],
        patchSize: 2,
        dim: 8,
        depth: 1,
        heads: 2,
      });
      const head = layers.simclrV1Projector({ inputDim: 8, outputDim: 4 });
      const optimizer = tf.train.sgd(0.1);
      const [global, local] = [
        tf.randomNormal([4, 8, 8, 3], 0, 1, 'float32', 1),
        tf.randomNormal([4, 4, 4, 3], 0, 1, 'float32', 2),
      ];
      const kernel = () => Array.from(head.getWeights()[0]!.dataSync()).join();
      const start = kernel();
      const cost = optimizer.minimize(() => {
        const project = (x: typeof global) =>
          head.apply(backbone.apply(x, { training: true }), { training: true }) as typeof global;
        return window.lib.ntXentLoss(project(global) as never, project(local) as never) as never;
      }, true);
      const loss = cost === null ? Number.NaN : cost.dataSync()[0]!;
      const trained = kernel() !== start;
      tf.dispose([global, local, cost ?? []]);
      optimizer.dispose();
      backbone.dispose();
      head.dispose();
      return { finite: Number.isFinite(loss), trained, leaked: tf.memory().numTensors - before };
    });
    expect(result).toEqual({ finite: true, trained: true, leaked: 0 });
  });

  it('webgl: full float32, and the software renderer is recognised', async () => {
    const info = await select(p, 'webgl');
    expect(info).toMatchObject({ name: 'webgl', float32: true, softwareRenderer: true });
    expect(info.device).toMatch(/swiftshader/i);
    expect(await probe(p)).toEqual({
      y: [expect.closeTo(0.6, 5), expect.closeTo(0.8, 5)],
      leaked: 0,
    });
  });

  it('webgpu: full float32, the SwiftShader adapter recognised as software', async () => {
    const info = await select(p, 'webgpu');
    expect(info).toMatchObject({ name: 'webgpu', float32: true, softwareRenderer: true });
    expect(info.device).toMatch(/swiftshader/i);
    expect(await probe(p)).toEqual({
      y: [expect.closeTo(0.6, 5), expect.closeTo(0.8, 5)],
      leaked: 0,
    });
  });

  it("'auto' skips software-rendered GPUs and picks wasm, saying why", async () => {
    const info = await select(p, 'auto');
    expect(info.name).toBe('wasm');
    expect(info.notes).toEqual([
      expect.stringMatching(/^skipped webgpu: software renderer .*swiftshader/i),
      expect.stringMatching(/^skipped webgl: software renderer .*swiftshader/i),
    ]);
  });
});

describe('selectBackend in headless Chromium without cross-origin isolation', () => {
  it('wasm runs single-threaded and the note says why', async () => {
    const p = await openTestPage({ isolated: false });
    try {
      const info = await select(p, 'wasm');
      expect(info.threads).toBe(1);
      expect(info.notes.join(' ')).toMatch(/cross-origin isolated/);
    } finally {
      await p.close();
    }
  });
});
