/**
 * Update rules: the per-cell networks of neural cellular automata, as tfjs-layers
 * layers mapping states `[batch, height, width, channels]` to deltas of the same shape.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { BUILT_IN_RULES } from './registry.js';

export { UpdateRule } from './UpdateRule.js';
export type { UpdateRuleOptions } from './UpdateRule.js';
export { ResidualUpdateRule } from './ResidualUpdateRule.js';
export type { ResidualUpdateRuleOptions } from './ResidualUpdateRule.js';
export { PerceptionUpdateRule } from './PerceptionUpdateRule.js';
export type { PerceptionUpdateRuleOptions } from './PerceptionUpdateRule.js';

/**
 * Registers the built-in update rules (`vnca.ResidualUpdateRule`,
 * `vnca.PerceptionUpdateRule`) with tfjs serialization, so that
 * `tf.serialization.SerializationMap` and tfjs-layers deserialization can rebuild them
 * from `{ className, config }`. Each layer module also registers itself when loaded, but
 * bundlers may drop that side effect (the package declares `"sideEffects": false`), so
 * code that loads saved rules calls `registerLayers()` first. Calling it again is harmless.
 *
 * @category Update rules
 */
export function registerLayers(): void {
  for (const rule of BUILT_IN_RULES) tf.serialization.registerClass(rule as never);
}
