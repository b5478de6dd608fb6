/**
 * Core primitives: perception kernels and `perceive`, the stochastic cell mask and
 * masked update, cell division (`doubleCells`), damage and the alive mask.
 * Tensors are NHWC: `[batch, height, width, channels]`.
 * @module
 */
export { identityKernel, sobelXKernel, sobelYKernel, laplacianKernel } from './kernels.js';
export { perceive } from './perceive.js';
export { cellMask, maskedUpdate } from './mask.js';
export { doubleCells } from './doubling.js';
export { damage, damageMask, aliveMask } from './damage.js';
export type { DamageRegion, AliveMaskOptions } from './damage.js';
