import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { VncaError, assertInt, assertOneOf, describe } from '../core/errors.js';
import { fastConv2d } from '../backend/wasmTraining.js';
import { UpdateRule, optionsRecord } from './UpdateRule.js';

/**
 * Options of {@link ResidualUpdateRule}. The defaults are the paper's doubling VNCA on
 * MNIST (1,182,208 parameters).
 *
 * @category Update rules
 */
export interface ResidualUpdateRuleOptions {
  /** Channels per cell (the VNCA's `zSize`). Integer >= 1, default 256. */
  channels?: number;
  /** Channels inside each residual block. Integer >= 1, default 256. */
  hidden?: number;
  /** Number of residual blocks. Integer >= 0, default 4. */
  nBlocks?: number;
  /** Size of the first (spatial) convolution. Odd integer >= 1, default 3. */
  kernelSize?: number;
  /**
   * Activation after the first convolution: `'linear'` (the doubling VNCA, default) or
   * `'elu'` (the non-doubling VNCA's rule conv3x3 ; ELU ; conv1x1, with `nBlocks: 0`).
   */
  inActivation?: 'linear' | 'elu';
  /** Whether the last convolution has a bias (default true; the non-doubling VNCA's has none). */
  outBias?: boolean;
  /** Layer name (tfjs-layers makes one up when absent). */
  name?: string;
  /** Whether the weights are trained (default true). */
  trainable?: boolean;
}

const NAME = 'ResidualUpdateRule';

/**
 * PyTorch's default initialiser for a convolution with `fanIn` inputs per output
 * (kernel: kaiming_uniform(a = sqrt(5)), bias: the same bound): uniform in
 * `[-1/sqrt(fanIn), 1/sqrt(fanIn)]`. The reference implementation uses these.
 */
function torchUniform(fanIn: number): ReturnType<typeof tfl.initializers.randomUniform> {
  const bound = 1 / Math.sqrt(fanIn);
  return tfl.initializers.randomUniform({ minval: -bound, maxval: bound });
}

/**
 * The update rule of the Variational Neural Cellular Automaton (Palm et al., ICLR 2022):
 *
 * ```
 * x = conv_kxk(state)                        // channels -> channels, same padding
 * repeat nBlocks times: x = x + conv1x1(elu(conv1x1(x)))   // channels -> hidden -> channels
 * delta = conv_out_1x1(x)                    // channels -> channels, starts at zero
 * ```
 *
 * No activation between the first convolution and the first block, none after the last
 * block. The last convolution's kernel and bias start at zero, so a fresh rule leaves
 * every state unchanged. With the defaults it has 1,182,208 parameters, as in the paper.
 *
 * Weights, created by `build()` in this order (the order of `getWeights()` and
 * `setWeights()`; each name is prefixed with the layer name, e.g.
 * `residual_update_rule_1/conv_in/kernel`, when built through `apply`):
 *
 * | name | shape | initialiser |
 * | --- | --- | --- |
 * | `conv_in/kernel` | `[k, k, channels, channels]` | U(±1/sqrt(k*k*channels)) |
 * | `conv_in/bias` | `[channels]` | U(±1/sqrt(k*k*channels)) |
 * | `block{i}/conv1/kernel`, i = 0 .. nBlocks-1 | `[1, 1, channels, hidden]` | U(±1/sqrt(channels)) |
 * | `block{i}/conv1/bias` | `[hidden]` | U(±1/sqrt(channels)) |
 * | `block{i}/conv2/kernel` | `[1, 1, hidden, channels]` | U(±1/sqrt(hidden)) |
 * | `block{i}/conv2/bias` | `[channels]` | U(±1/sqrt(hidden)) |
 * | `conv_out/kernel` | `[1, 1, channels, channels]` | zeros |
 * | `conv_out/bias` (unless `outBias: false`) | `[channels]` | zeros |
 *
 * (blocks in order, each block's four weights together). The initialisers are PyTorch's
 * defaults, as in the reference implementation. A PyTorch `Conv2d` weight
 * `[out, in, kh, kw]` maps to these kernels by transposing to `[kh, kw, in, out]`.
 *
 * Computation uses {@link fastConv2d}: 1x1 convolutions run as a reshape and one fused
 * matMul, and every gradient uses forward convolutions and plain matMuls, so training is
 * fast on the wasm and cpu backends too.
 *
 * @example
 * ```ts
 * const rule = new ResidualUpdateRule({ channels: 32, hidden: 32 });
 * const delta = rule.apply(tf.randomNormal([1, 4, 4, 32])) as tf.Tensor4D; // zeros at first
 * ```
 * @category Update rules
 */
export class ResidualUpdateRule extends UpdateRule {
  /** tfjs serialization name. */
  static override className = 'vnca.ResidualUpdateRule';

  /** Channels inside each residual block. */
  readonly hidden: number;
  /** Number of residual blocks. */
  readonly nBlocks: number;
  /** Size of the first convolution's kernel. */
  readonly kernelSize: number;
  /** Activation after the first convolution. */
  readonly inActivation: 'linear' | 'elu';
  /** Whether the last convolution has a bias. */
  readonly outBias: boolean;

  private convIn: [tfl.LayerVariable, tfl.LayerVariable] | null = null;
  private blocks: [tfl.LayerVariable, tfl.LayerVariable, tfl.LayerVariable, tfl.LayerVariable][] = [];
  private convOut: [tfl.LayerVariable, tfl.LayerVariable | null] | null = null;

  /**
   * @param options - Sizes ({@link ResidualUpdateRuleOptions}); the defaults are the paper's.
   */
  constructor(options: ResidualUpdateRuleOptions = {}) {
    const o = optionsRecord(options, NAME);
    const { channels = 256, hidden = 256, nBlocks = 4, kernelSize = 3, inActivation = 'linear', outBias = true } = o;
    assertOneOf(inActivation, ['linear', 'elu'] as const, NAME, 'inActivation');
    if (typeof outBias !== 'boolean') throw new VncaError(NAME, 'outBias', `must be a boolean, but got ${describe(outBias)}.`);
    assertInt(hidden, NAME, 'hidden', 1);
    assertInt(nBlocks, NAME, 'nBlocks', 0);
    assertInt(kernelSize, NAME, 'kernelSize', 1);
    if (kernelSize % 2 !== 1) throw new VncaError(NAME, 'kernelSize', `must be odd, but got ${describe(kernelSize)}.`);
    super({ ...o, channels } as ResidualUpdateRuleOptions & { channels: number });
    this.hidden = hidden;
    this.nBlocks = nBlocks;
    this.kernelSize = kernelSize;
    this.inActivation = inActivation;
    this.outBias = outBias;
  }

  /**
   * Creates the weights (see the class documentation for names, shapes and order).
   *
   * @param inputShape - `[batch, height, width, channels]`; only `channels` matters
   *   (null entries are fine, e.g. `[null, null, null, 256]`).
   */
  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    this.checkBuildShape(inputShape);
    const c = this.channels, hid = this.hidden, k = this.kernelSize;
    const inInit = torchUniform(k * k * c);
    this.convIn = [
      this.addWeight('conv_in/kernel', [k, k, c, c], 'float32', inInit),
      this.addWeight('conv_in/bias', [c], 'float32', inInit),
    ];
    this.blocks = [];
    for (let i = 0; i < this.nBlocks; i++) {
      const init1 = torchUniform(c), init2 = torchUniform(hid);
      this.blocks.push([
        this.addWeight(`block${i}/conv1/kernel`, [1, 1, c, hid], 'float32', init1),
        this.addWeight(`block${i}/conv1/bias`, [hid], 'float32', init1),
        this.addWeight(`block${i}/conv2/kernel`, [1, 1, hid, c], 'float32', init2),
        this.addWeight(`block${i}/conv2/bias`, [c], 'float32', init2),
      ]);
    }
    const zeros = tfl.initializers.zeros();
    this.convOut = [
      this.addWeight('conv_out/kernel', [1, 1, c, c], 'float32', zeros),
      this.outBias ? this.addWeight('conv_out/bias', [c], 'float32', zeros) : null,
    ];
    this.trainable = this.trainable; // gives the new variables the layer's trainable flag
    this.built = true;
  }

  /**
   * @param state - Cell states, float32 `[batch, height, width, channels]`.
   * @returns The delta, float32 `[batch, height, width, channels]`.
   */
  delta(state: tf.Tensor4D): tf.Tensor4D {
    if (this.convIn === null || this.convOut === null) this.build(state.shape);
    const [inK, inB] = this.convIn!;
    let x = fastConv2d(state, inK.read() as tf.Tensor4D, { bias: inB.read() as tf.Tensor1D, activation: this.inActivation });
    for (const [k1, b1, k2, b2] of this.blocks) {
      const h = fastConv2d(x, k1.read() as tf.Tensor4D, { bias: b1.read() as tf.Tensor1D, activation: 'elu' });
      x = tf.add(x, fastConv2d(h, k2.read() as tf.Tensor4D, { bias: b2.read() as tf.Tensor1D }));
    }
    const [outK, outB] = this.convOut!;
    return fastConv2d(x, outK.read() as tf.Tensor4D, outB ? { bias: outB.read() as tf.Tensor1D } : {});
  }

  /**
   * @returns The base config plus `hidden`, `nBlocks`, `kernelSize`, `inActivation` and `outBias`.
   */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(), hidden: this.hidden, nBlocks: this.nBlocks, kernelSize: this.kernelSize,
      inActivation: this.inActivation, outBias: this.outBias,
    };
  }
}

tf.serialization.registerClass(ResidualUpdateRule);
