import { defineConfig } from 'vitest/config';

// Tests in headless Chromium (Debian's chromium, driven by playwright-core).
export default defineConfig({
  test: {
    globals: false,
    include: ['tests/browser/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
