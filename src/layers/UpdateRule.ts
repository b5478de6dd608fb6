import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { VncaError, assertInt, assertState, describe } from '../core/errors.js';

/**
 * Options every {@link UpdateRule} takes.
 *
 * @category Update rules
 */
export interface UpdateRuleOptions {
  /** Channels per cell: the last dimension of the states the rule reads and writes. */
  channels: number;
  /** Layer name (tfjs-layers makes one up when absent). Weight names start with it once built. */
  name?: string;
  /** Whether the rule's weights are trained (default true). */
  trainable?: boolean;
}

/**
 * Checks that an options argument is a plain object (or undefined) and returns it as a record. @internal
 */
export function optionsRecord(options: unknown, fn: string): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  }
  return options as Record<string, unknown>;
}

/**
 * The update rule of a neural cellular automaton: a tfjs-layers `Layer` that maps the
 * cell states `[batch, height, width, channels]` to a change (delta) of the same shape.
 * The automaton applies it as `state <- state + mask * rule.apply(state)`.
 *
 * A new rule is a subclass with one method, {@link UpdateRule.delta}, plus `build()`
 * creating its weights with `this.addWeight` when it has any. The base class does the
 * rest: `call()` (unwraps an array input, checks the state, runs `delta` inside
 * `tf.tidy`), `computeOutputShape` (the input shape), the {@link UpdateRule.channels}
 * property, `getConfig()` (name, trainable and channels; add your own options), and
 * everything `tf.layers.Layer` provides (`apply`, `countParams`, `getWeights`,
 * `setWeights`, `dispose`). Weights are trainable tfjs variables, so a rule trains with
 * `tf.variableGrads` or `optimizer.minimize`.
 *
 * Call it with `rule.apply(state) as tf.Tensor4D`; the first call builds the weights.
 *
 * @example
 * A rule with one 1x1 convolution (a per-cell linear map), trained one step:
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { UpdateRule } from 'vnca';
 *
 * class LinearRule extends UpdateRule {
 *   static override className = 'my.LinearRule';
 *   private kernel!: tfl.LayerVariable;
 *   override build(): void {
 *     this.kernel = this.addWeight('kernel', [1, 1, this.channels, this.channels], 'float32',
 *       tfl.initializers.glorotUniform({}));
 *     this.built = true;
 *   }
 *   delta(state: tf.Tensor4D): tf.Tensor4D {
 *     return tf.conv2d(state, this.kernel.read() as tf.Tensor4D, 1, 'same');
 *   }
 * }
 * tf.serialization.registerClass(LinearRule); // for save/load
 *
 * const rule = new LinearRule({ channels: 8 });
 * const state = tf.randomNormal([2, 4, 4, 8]) as tf.Tensor4D;
 * const optimizer = tf.train.adam(1e-3);
 * optimizer.minimize(() => tf.mean(tf.square(rule.apply(state) as tf.Tensor4D)) as tf.Scalar);
 * ```
 * @category Update rules
 */
export abstract class UpdateRule extends tfl.layers.Layer {
  /** tfjs serialization name; subclasses set their own (prefix it, e.g. `'my.LinearRule'`). */
  static className = 'vnca.UpdateRule';

  /** Channels per cell: the last dimension of the states this rule reads and writes. */
  readonly channels: number;

  /** The name error messages use: the className, without the `vnca.` prefix of built-in rules. */
  private static fnName(className: string | undefined): string {
    if (!className) return 'UpdateRule';
    return className.startsWith('vnca.') ? className.slice(5) : className;
  }

  /**
   * @param options - `channels` (required, integer >= 1), and the optional layer `name`
   *   and `trainable` flag.
   */
  constructor(options: UpdateRuleOptions) {
    const fn = UpdateRule.fnName(new.target.className);
    const o = optionsRecord(options, fn);
    assertInt(o.channels, fn, 'channels', 1);
    if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0)) {
      throw new VncaError(fn, 'name', `must be a non-empty string, but got ${describe(o.name)}.`);
    }
    if (o.trainable !== undefined && typeof o.trainable !== 'boolean') {
      throw new VncaError(fn, 'trainable', `must be a boolean, but got ${describe(o.trainable)}.`);
    }
    super({ name: o.name as string | undefined, trainable: o.trainable as boolean | undefined });
    this.channels = o.channels;
  }

  /**
   * The trainable weights as tfjs variables, in `getWeights()` order: the `varList` for
   * `tf.variableGrads` or `optimizer.minimize`. Empty until the rule is built.
   */
  get trainableVariables(): tf.Variable[] {
    return this.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /**
   * The change of every cell's state. Runs inside `tf.tidy` (temporaries are freed);
   * must not dispose `state`.
   *
   * @param state - Cell states, float32 `[batch, height, width, channels]`.
   * @returns The delta, float32 `[batch, height, width, channels]`.
   */
  abstract delta(state: tf.Tensor4D): tf.Tensor4D;

  /**
   * Runs {@link UpdateRule.delta} on the state (the first tensor when given an array),
   * inside `tf.tidy`. Prefer `rule.apply(state)`, which also builds the weights on
   * first use.
   *
   * @param inputs - Cell states `[batch, height, width, channels]`, or an array whose
   *   first element is.
   * @returns The delta, float32 `[batch, height, width, channels]`.
   */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor4D {
    return tf.tidy(() => {
      const state = Array.isArray(inputs) ? inputs[0] : inputs;
      const fn = `${UpdateRule.fnName(this.getClassName())}.call`;
      assertState(state, fn, 'state');
      if (state.shape[3] !== this.channels) {
        throw new VncaError(fn, 'state', `must have ${this.channels} channels, but got shape [${state.shape.join(', ')}].`);
      }
      return this.delta(state);
    });
  }

  /**
   * @param inputShape - `[batch, height, width, channels]` (entries may be null).
   * @returns The same shape: a delta has the shape of the state.
   */
  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  /**
   * Checks a build-time input shape against {@link UpdateRule.channels}. Subclasses call
   * it at the top of `build()`. @internal
   */
  protected checkBuildShape(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = Array.isArray(inputShape[0]) ? (inputShape as tfl.Shape[])[0] : (inputShape as tfl.Shape);
    const fn = `${UpdateRule.fnName(this.getClassName())}.build`;
    if (!Array.isArray(shape) || shape.length !== 4) {
      throw new VncaError(fn, 'inputShape', `must be [batch, height, width, channels], but got ${describe(inputShape)}.`);
    }
    const c = shape[3];
    if (c !== null && c !== undefined && c !== this.channels) {
      throw new VncaError(fn, 'inputShape', `must have ${this.channels} channels, but got [${shape.join(', ')}].`);
    }
  }

  /**
   * The layer config: the tfjs-layers base fields plus `channels`. Subclasses add their
   * own options.
   *
   * @returns A JSON-serialisable config; `fromConfig` rebuilds an equal rule from it.
   */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), channels: this.channels };
  }
}
