import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { VncaError, assertInt, describe } from '../core/errors.js';
import { identityKernel, sobelXKernel, sobelYKernel } from '../core/kernels.js';
import { perceive } from '../core/perceive.js';
import { fastConv2d } from '../ops/conv.js';
import { UpdateRule, optionsRecord } from './UpdateRule.js';

/**
 * Options of {@link PerceptionUpdateRule}. The defaults are the Growing NCA's
 * (Mordvintsev et al., Distill 2020): 16 channels, 128 hidden, identity and Sobel
 * perception, 8,336 parameters.
 *
 * @category Update rules
 */
export interface PerceptionUpdateRuleOptions {
  /** Channels per cell. Integer >= 1, default 16 (RGBA + 12 hidden). */
  channels?: number;
  /** Width of the hidden layer. Integer >= 1, default 128. */
  hidden?: number;
  /**
   * Fixed perception kernels (square, all of one odd size; row = y, column = x), applied
   * to every channel by {@link perceive}. Default `[identityKernel(), sobelXKernel(), sobelYKernel()]`.
   */
  kernels?: number[][][];
  /** Layer name (tfjs-layers makes one up when absent). */
  name?: string;
  /** Whether the weights are trained (default true). */
  trainable?: boolean;
}

const NAME = 'PerceptionUpdateRule';

/** Checks perception kernels and returns a deep copy. */
function checkKernels(kernels: unknown): number[][][] {
  if (!Array.isArray(kernels) || kernels.length === 0) {
    throw new VncaError(NAME, 'kernels', `must be a non-empty array of square 2D number arrays, but got ${describe(kernels)}.`);
  }
  const size = Array.isArray(kernels[0]) ? kernels[0].length : -1;
  return kernels.map((kernel: unknown, n) => {
    const ok = Array.isArray(kernel) && kernel.length === size && size % 2 === 1
      && kernel.every((row: unknown) => Array.isArray(row) && row.length === size
        && row.every((v: unknown) => typeof v === 'number' && Number.isFinite(v)));
    if (!ok) {
      throw new VncaError(NAME, `kernels[${n}]`, `must be a square array of finite numbers of the same odd size as kernels[0], but got ${describe(kernel)}.`);
    }
    return (kernel as number[][]).map((row) => [...row]);
  });
}

/**
 * The update rule of the Growing Neural Cellular Automaton (Mordvintsev et al., Distill
 * 2020): fixed perception, then a per-cell two-layer MLP (1x1 convolutions):
 *
 * ```
 * p = perceive(state, kernels)             // [b, h, w, channels * kernels.length]
 * delta = fc2(relu(fc1(p)))                // channels*k -> hidden -> channels
 * ```
 *
 * `fc2`'s kernel and bias start at zero, so a fresh rule leaves every state unchanged.
 * With the defaults it maps 48 -> 128 -> 16 and has 8,336 parameters, as the Distill
 * notebook's Keras model.
 *
 * Weights, created by `build()` in this order (the order of `getWeights()` and
 * `setWeights()`; prefixed with the layer name when built through `apply`):
 *
 * | name | shape | initialiser |
 * | --- | --- | --- |
 * | `fc1/kernel` | `[1, 1, channels * kernels.length, hidden]` | Glorot uniform |
 * | `fc1/bias` | `[hidden]` | zeros |
 * | `fc2/kernel` | `[1, 1, hidden, channels]` | zeros |
 * | `fc2/bias` | `[channels]` | zeros |
 *
 * These are Keras `Conv2D(…, 1)` kernels, the layout of the Distill notebook's weights.
 *
 * @example
 * ```ts
 * const rule = new PerceptionUpdateRule(); // 16 channels, 48 -> 128 -> 16
 * const delta = rule.apply(tf.zeros([1, 32, 32, 16])) as tf.Tensor4D;
 * ```
 * @category Update rules
 */
export class PerceptionUpdateRule extends UpdateRule {
  /** tfjs serialization name. */
  static override className = 'vnca.PerceptionUpdateRule';

  /** Width of the hidden layer. */
  readonly hidden: number;
  /** The perception kernels (a copy is returned, each `[size][size]`). */
  get kernels(): number[][][] {
    return this.kernelList.map((k) => k.map((row) => [...row]));
  }

  private readonly kernelList: number[][][];
  private fc1: [tfl.LayerVariable, tfl.LayerVariable] | null = null;
  private fc2: [tfl.LayerVariable, tfl.LayerVariable] | null = null;

  /**
   * @param options - Sizes and kernels ({@link PerceptionUpdateRuleOptions}); the
   *   defaults are the Growing NCA's.
   */
  constructor(options: PerceptionUpdateRuleOptions = {}) {
    const o = optionsRecord(options, NAME);
    const { channels = 16, hidden = 128 } = o;
    assertInt(hidden, NAME, 'hidden', 1);
    const kernels = checkKernels(o.kernels ?? [identityKernel(), sobelXKernel(), sobelYKernel()]);
    super({ ...o, channels } as PerceptionUpdateRuleOptions & { channels: number });
    this.hidden = hidden;
    this.kernelList = kernels;
  }

  /** Channels of the perception vector: `channels * kernels.length` (48 by default). */
  get perceptionChannels(): number {
    return this.channels * this.kernelList.length;
  }

  /**
   * Creates the weights (see the class documentation for names, shapes and order).
   *
   * @param inputShape - `[batch, height, width, channels]`; only `channels` matters.
   */
  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    this.checkBuildShape(inputShape);
    this.fc1 = [
      this.addWeight('fc1/kernel', [1, 1, this.perceptionChannels, this.hidden], 'float32', tfl.initializers.glorotUniform({})),
      this.addWeight('fc1/bias', [this.hidden], 'float32', tfl.initializers.zeros()),
    ];
    this.fc2 = [
      this.addWeight('fc2/kernel', [1, 1, this.hidden, this.channels], 'float32', tfl.initializers.zeros()),
      this.addWeight('fc2/bias', [this.channels], 'float32', tfl.initializers.zeros()),
    ];
    this.trainable = this.trainable; // gives the new variables the layer's trainable flag
    this.built = true;
  }

  /**
   * @param state - Cell states, float32 `[batch, height, width, channels]`.
   * @returns The delta, float32 `[batch, height, width, channels]`.
   */
  delta(state: tf.Tensor4D): tf.Tensor4D {
    if (this.fc1 === null || this.fc2 === null) this.build(state.shape);
    const [k1, b1] = this.fc1!;
    const [k2, b2] = this.fc2!;
    const p = perceive(state, this.kernelList);
    const h = fastConv2d(p, k1.read() as tf.Tensor4D, { bias: b1.read() as tf.Tensor1D, activation: 'relu' });
    return fastConv2d(h, k2.read() as tf.Tensor4D, { bias: b2.read() as tf.Tensor1D });
  }

  /**
   * @returns The base config plus `hidden` and `kernels` (always explicit, so a rule
   *   rebuilt from it perceives the same way even if the defaults change).
   */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), hidden: this.hidden, kernels: this.kernels };
  }
}

tf.serialization.registerClass(PerceptionUpdateRule);
