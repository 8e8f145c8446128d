import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // tfjs's own test helpers trip over a global `expect`.
    globals: false,
    include: ['tests/**/*.test.ts'],
    // Browser tests run in test:browser (vitest.browser.config.ts).
    exclude: ['tests/bundle/**', 'tests/browser/**'],
    // Reproducible unseeded draws (tfjs-layers initialisers): tests/support/deterministic.ts.
    setupFiles: ['tests/support/deterministic.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
