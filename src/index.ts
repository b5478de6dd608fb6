/**
 * vnca — neural cellular automata on TensorFlow.js, with the Variational Neural
 * Cellular Automaton (Palm et al., ICLR 2022) as its flagship.
 *
 * Public groups:
 * - Errors: {@link VncaError}
 * - Core primitives (src/core): perception kernels and `perceive`, stochastic cell
 *   mask and masked update, `doubleCells`, `damage`, `aliveMask`, `SamplePool`
 * - Update rules (src/layers): `UpdateRule`, `ResidualUpdateRule`, `PerceptionUpdateRule`
 * - Growth (src/growth): `grow`, `runSteps`
 * - VAE (src/vae): distributions, likelihoods, `elbo`, `iwae`, `Encoder`, `VNCA`
 *
 * Tensors are NHWC: `[batch, height, width, channels]`.
 * @module
 */
export { VncaError } from './core/errors.js';
