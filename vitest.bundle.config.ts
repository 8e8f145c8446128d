import { defineConfig } from 'vitest/config';

// Tests of the built package (dist/ and the npm tarball): run after `npm run build`.
export default defineConfig({
  test: {
    globals: false,
    include: ['tests/bundle/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 180_000,
  },
});
