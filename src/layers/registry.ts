/**
 * The one list of update rules the library can rebuild from `{ className, config }`: the
 * built-in rules, then rules registered with `tf.serialization.registerClass`. Loading
 * (`VNCA.load`), `registerLayers()` and `ParallelVNCA`'s workers all read it.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { VncaError } from '../core/errors.js';
import { UpdateRule } from './UpdateRule.js';
import { ResidualUpdateRule } from './ResidualUpdateRule.js';
import { PerceptionUpdateRule } from './PerceptionUpdateRule.js';

/** A class of update rule that can be rebuilt from its config. */
export type RuleClass = (new (config: never) => UpdateRule) & { className: string };

/** The update rules that ship with the library. @internal */
export const BUILT_IN_RULES: readonly RuleClass[] = [ResidualUpdateRule, PerceptionUpdateRule] as unknown as RuleClass[];

/** Whether `className` names a built-in update rule. @internal */
export function isBuiltInRule(className: string | undefined): boolean {
  return BUILT_IN_RULES.some((c) => c.className === className);
}

/**
 * Rebuilds an update rule from `{ className, config }`, looking in `classes` (the caller's
 * own), then the built-in rules, then tfjs's serialization registry. Errors name `fn`. @internal
 */
export function buildRule(spec: { className: string; config: tf.serialization.ConfigDict }, classes: readonly RuleClass[], fn: string): UpdateRule {
  const registered = tf.serialization.SerializationMap.getMap().classNameMap as Record<string, [unknown, unknown]>;
  const cls = [...classes, ...BUILT_IN_RULES].find((c) => c.className === spec.className)
    ?? (registered[spec.className]?.[0] as RuleClass | undefined);
  if (!cls) {
    throw new VncaError(fn, 'updateRule', `'${spec.className}' is not a known update rule class: pass it in options.updateRules or register it with tf.serialization.registerClass.`);
  }
  const rule = new cls(spec.config as never);
  if (!(rule instanceof UpdateRule)) throw new VncaError(fn, 'updateRule', `'${spec.className}' must extend UpdateRule.`);
  return rule;
}
