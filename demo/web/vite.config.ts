/**
 * The browser demo: `npx vite demo/web` (dev server), or `npx vite build demo/web` (into
 * .tmp/demo-web) then `npx vite preview demo/web` (the built page). The library is used from
 * source (src/), under the package's own import names.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { demoAssets } from './assets-plugin.js';

const src = fileURLToPath(new URL('../../src/', import.meta.url));

// wasm threads need SharedArrayBuffer, which only a cross-origin isolated page has.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs, so the built page works from any folder.
  base: './',
  resolve: {
    alias: [
      { find: /^tfjs-contrastive$/, replacement: `${src}index.ts` },
      { find: /^tfjs-contrastive\/(\w+)$/, replacement: `${src}$1/index.ts` },
    ],
  },
  plugins: [demoAssets()],
  // Pre-bundled up front, so the dev server never discovers one mid-run and reloads the page.
  optimizeDeps: {
    include: [
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-layers',
      '@tensorflow/tfjs-backend-wasm',
      '@tensorflow/tfjs-backend-webgl',
      '@tensorflow/tfjs-backend-webgpu',
    ],
  },
  server: { headers: isolation },
  preview: { headers: isolation },
  build: {
    // Outside the linted and packed folders (dist/ is the library's).
    outDir: fileURLToPath(new URL('../../.tmp/demo-web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // tfjs's backends are large; one page, one chunk each, no warning about it.
    chunkSizeWarningLimit: 4000,
  },
});
