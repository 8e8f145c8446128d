/**
 * `import 'tfjs-contrastive/register'`: registers the library's custom layers with tfjs's
 * serialisation registry as a side effect (the one module of the package that has one), so that
 * saved models containing them load with `tf.loadLayersModel`.
 */
import { registerLayers } from './layers/register.js';

registerLayers();
