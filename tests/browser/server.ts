/**
 * Bundles tests/browser/page.ts and serves it on 127.0.0.1 with the cross-origin isolation
 * headers that wasm threads need, then opens headless Chromium (Debian's /usr/bin/chromium via
 * playwright-core; no browser download).
 */
import { build } from 'esbuild';
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './chromium.js';

const root = resolve(import.meta.dirname, '../..');
const wasmDir = join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

export interface BrowserPage {
  page: Page;
  close(): Promise<void>;
}

export async function openTestPage(options: { isolated?: boolean } = {}): Promise<BrowserPage> {
  const out = mkdtempSync(join(tmpdir(), 'tfjs-contrastive-browser-'));
  await build({
    entryPoints: { page: join(root, 'tests/browser/page.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    outdir: out,
    logLevel: 'silent',
    // tfjs-backend-wasm's ESM build names Node modules for its Node code paths.
    external: ['fs', 'path', 'os', 'worker_threads', 'perf_hooks'],
  });
  const isolated = options.isolated ?? true;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let file: string;
    if (url.pathname === '/') {
      res.writeHead(200, headers('.html', isolated));
      res.end('<!doctype html><script type="module" src="/page.js"></script>');
      return;
    } else if (url.pathname.startsWith('/wasm/')) {
      file = join(wasmDir, url.pathname.slice('/wasm/'.length));
    } else {
      file = join(out, url.pathname);
    }
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, headers(extname(file), isolated));
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const browser: Browser = await launchChromium();
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => 'lib' in window);
  return {
    page,
    close: async () => {
      await browser.close();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(out, { recursive: true, force: true });
    },
  };
}

function headers(ext: string, isolated: boolean): Record<string, string> {
  const h: Record<string, string> = { 'Content-Type': TYPES[ext] ?? 'application/octet-stream' };
  if (isolated) {
    h['Cross-Origin-Opener-Policy'] = 'same-origin';
    h['Cross-Origin-Embedder-Policy'] = 'require-corp';
  }
  return h;
}
