import { defineConfig } from 'tsup';

// One entry per public subpath of package.json's `exports`; tests/package/exports.test.ts checks
// that the two lists agree.
export const entries = {
  index: 'src/index.ts',
  core: 'src/core/index.ts',
  losses: 'src/losses/index.ts',
  state: 'src/state/index.ts',
  augment: 'src/augment/index.ts',
  eval: 'src/eval/index.ts',
  layers: 'src/layers/index.ts',
  methods: 'src/methods/index.ts',
  io: 'src/io/index.ts',
  register: 'src/register.ts',
};

export default defineConfig({
  entry: entries,
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  target: 'es2022',
  platform: 'neutral',
  external: [/^@tensorflow\//, /^node:/],
  tsconfig: 'tsconfig.build.json',
});
