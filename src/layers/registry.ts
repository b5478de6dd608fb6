/**
 * The one list of update rules the library can rebuild from `{ className, config }`: the
 * built-in rules, then rules registered with `tf.serialization.registerClass`. Loading
 * (`VNCA.load`), `registerLayers()` and `ParallelVNCA`'s workers all read it.
 * @module
 */
import { VncaError } from '../core/errors.js';
import { resolveSavedClass } from '../core/io.js';
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
 * own), then the built-in rules, then tfjs's serialization registry, accepting only
 * {@link UpdateRule} subclasses. Errors name `fn`. @internal
 */
export function buildRule(spec: unknown, classes: readonly RuleClass[], fn: string): UpdateRule {
  // Only UpdateRule subclasses: a model file cannot make the loader build Dense or Conv2D.
  const { cls, config } = resolveSavedClass(
    spec, [...classes, ...BUILT_IN_RULES], UpdateRule as unknown as RuleClass, fn, 'updateRule', 'update rule',
  );
  const rule = new cls(config as never);
  if (!(rule instanceof UpdateRule)) {
    throw new VncaError(fn, 'updateRule', `'${(spec as { className: string }).className}' must extend UpdateRule.`);
  }
  return rule;
}
