/**
 * The classic Growing Neural Cellular Automaton (Mordvintsev et al., Distill 2020),
 * assembled from the library's primitives: {@link GrowingNCA}.
 * @module
 */
export { GrowingNCA } from './GrowingNCA.js';
export type { GrowingTrainStepResult } from './GrowingNCA.js';
export type { GrowingNCAOptions, GrowingNCAConfig, GrowingRunOptions } from './config.js';
export type { GrowingSaveOptions } from './persistence.js';
