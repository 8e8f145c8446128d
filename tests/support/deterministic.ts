/**
 * Unit-test setup: a seeded `Math.random` for every test file.
 *
 * tfjs draws unseeded random tensors (every tfjs-layers initialiser) from a generator seeded with
 * `Math.random()`, so without this a layer test sees new initial weights on each run and an
 * assertion that holds for almost every draw fails once in a while in CI. With it, each file sees
 * the same draws on every run and machine: a failure reproduces locally. Tests still choose
 * their own seeds where the values matter.
 */
let state = 0x2545f491;

Math.random = (): number => {
  // mulberry32
  state = (state + 0x6d2b79f5) | 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
