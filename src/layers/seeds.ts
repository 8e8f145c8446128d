/**
 * @internal Seeded initial weights: a model seed spread over its layers, and seeded copies of
 * tfjs-layers initialisers.
 *
 * tfjs-layers' seeded initialisers draw on the host (seedrandom's alea, then one upload), so a
 * seeded weight is the same on every run, machine and backend. Two tfjs pitfalls shape the
 * helpers here: its normal samplers (truncated normal, hence glorot normal) treat a seed of 0 as
 * no seed at all (`seed ? seed : Math.random()`), so every derived seed is at least 1; and one
 * seed used for two weights gives them the same underlying stream (one a rescaled prefix of the
 * other), so every weight gets its own.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { checkNumber } from '../core/checks.js';
import { SeededRandom } from '../core/random.js';

/** A tfjs-layers initialiser. */
export type Initializer = ReturnType<typeof tfl.initializers.glorotUniform>;

/** The largest derived seed plus one: derived seeds lie in [1, 2^31). */
const SEED_RANGE = 2 ** 31 - 1;

/**
 * The seeds of a model's layers, drawn in construction order from `new SeededRandom(seed)`: the
 * k-th call of {@link LayerSeeds.next} returns `1 + rng.integer(2^31 - 1)`, the k-th draw. An
 * unseeded model gets `undefined` for every layer (tfjs's own unseeded draws, as without a seed).
 */
export class LayerSeeds {
  private readonly rng: SeededRandom | undefined;

  /**
   * @param caller - the builder, for the error message.
   * @param argument - the seed's argument name, e.g. `'args.seed'`.
   * @param seed - the model seed, an integer, or `undefined` for unseeded layers.
   */
  constructor(caller: string, argument: string, seed: number | undefined) {
    if (seed !== undefined) {
      checkNumber(caller, argument, seed, { integer: true });
      this.rng = new SeededRandom(seed);
    }
  }

  /** Whether the model is seeded. */
  get seeded(): boolean {
    return this.rng !== undefined;
  }

  /** The next layer's seed, in [1, 2^31), or `undefined` when the model is unseeded. */
  next(): number | undefined {
    return this.rng === undefined ? undefined : 1 + this.rng.integer(SEED_RANGE);
  }

  /**
   * The `kernelInitializer` argument of the next tfjs-layers dense or conv layer: nothing when
   * unseeded (the layer keeps its default, `'glorotNormal'`, unseeded), else that default seeded,
   * or `initializer` seeded when given.
   */
  kernel(initializer?: Initializer): { kernelInitializer?: Initializer } {
    const seed = this.next();
    if (seed === undefined)
      return initializer === undefined ? {} : { kernelInitializer: initializer };
    return {
      kernelInitializer:
        initializer === undefined
          ? // tfjs-layers' Dense and Conv default (DEFAULT_KERNEL_INITIALIZER), not Keras's glorot uniform.
            tfl.initializers.glorotNormal({ seed })
          : withSeed(initializer, seed),
    };
  }
}

/**
 * A copy of a tfjs-layers initialiser with `seed`: rebuilt through its own class from its config
 * (every seeded initialiser takes its config, seed included, as constructor arguments; those
 * without randomness ignore it).
 */
export function withSeed(initializer: Initializer, seed: number): Initializer {
  const cls = initializer.constructor as new (args: object) => Initializer;
  return new cls({ ...initializer.getConfig(), seed });
}

/**
 * `count` seeds for the weights of one custom layer, from the layer's own seed (`undefined` each
 * when unseeded): the first `count` draws of `new SeededRandom(seed)`, each in [1, 2^31).
 */
export function weightSeeds(seed: number | undefined, count: number): (number | undefined)[] {
  const seeds = new LayerSeeds('weightSeeds', 'seed', seed);
  return Array.from({ length: count }, () => seeds.next());
}
