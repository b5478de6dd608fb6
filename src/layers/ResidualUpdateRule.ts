import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { VncaError, assertInt, assertOneOf, describe } from '../core/errors.js';
import { convBackward, convForward, planConv } from '../ops/conv.js';
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
 * Computation works like {@link fastConv2d}: 1x1 convolutions run as a reshape and one
 * fused matMul (bias and elu included), and every gradient uses forward convolutions and
 * plain matMuls, so training is fast on the wasm and cpu backends too. The whole rule is
 * one custom gradient: under a gradient tape a call leaves one node that keeps the block
 * activations, and its backward pass frees its temporaries as soon as it ends (tfjs would
 * otherwise keep every intermediate gradient until `tf.grads` returns). Training a rollout
 * without checkpointing then needs about half the memory of per-op nodes.
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
    const [outK, outB] = this.convOut!;
    const n = this.blocks.length;
    const weights = [inK, inB, ...this.blocks.flat(), outK, ...(outB ? [outB] : [])].map((w) => w.read());
    const [b, h, w, c] = state.shape;
    const hid = this.hidden;
    const inAct = this.inActivation;
    const planIn = planConv(state.shape, inK.shape as number[], 1, 'same');
    const plan1 = planConv(state.shape, [1, 1, c, hid], 1, 'same');
    const plan2 = planConv([b, h, w, hid], [1, 1, hid, c], 1, 'same');
    const planOut = planConv(state.shape, [1, 1, c, c], 1, 'same');
    // One custom gradient for the whole rule: the backward pass walks the blocks in reverse
    // with the saved activations, so one step leaves one node on the tape, and one step's
    // gradient temporaries are freed when its backward ends (with per-op nodes tfjs keeps
    // every intermediate gradient until the whole tf.grads call returns).
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const save = args.pop() as tf.GradSaveFunc;
      const [s, ...wts] = args as tf.Tensor4D[];
      const kIn = wts[0]!, bIn = wts[1] as unknown as tf.Tensor1D;
      const kOut = wts[2 + 4 * n]!, bOut = wts[3 + 4 * n] as unknown as tf.Tensor1D | undefined;
      const xs: tf.Tensor4D[] = [convForward(s!, kIn, bIn, planIn, inAct)];
      const hs: tf.Tensor4D[] = [];
      for (let i = 0; i < n; i++) {
        const [k1, b1, k2, b2] = wts.slice(2 + 4 * i, 6 + 4 * i) as [tf.Tensor4D, tf.Tensor1D, tf.Tensor4D, tf.Tensor1D];
        hs.push(convForward(xs[i]!, k1, b1, plan1, 'elu'));
        xs.push(tf.add(xs[i]!, convForward(hs[i]!, k2, b2, plan2, 'linear')));
      }
      const value = convForward(xs[n]!, kOut, bOut, planOut, 'linear');
      // The weights are variables and outlive the backward pass: they are not saved (saving
      // clones, and the wasm backend's clone copies: 4.7 MB per step for the paper's rule).
      save([s!, ...xs, ...hs]);
      return {
        value,
        gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => tf.tidy(() => {
          const nw = wts.length;
          const s0 = saved[0] as tf.Tensor4D;
          const ws = weights as tf.Tensor4D[];
          const sx = saved.slice(1, 2 + n) as tf.Tensor4D[];
          const sh = saved.slice(2 + n) as tf.Tensor4D[];
          const grads: tf.Tensor[] = new Array<tf.Tensor>(nw);
          const [dxOut, ...dOut] = convBackward(sx[n]!, ws[2 + 4 * n]!, undefined, dy, planOut, 'linear', bOut !== undefined);
          grads.splice(2 + 4 * n, dOut.length, ...dOut);
          let dx = dxOut as tf.Tensor4D;
          for (let i = n - 1; i >= 0; i--) {
            const [dh, dk2, db2] = convBackward(sh[i]!, ws[4 + 4 * i]!, undefined, dx, plan2, 'linear', true);
            const [dxi, dk1, db1] = convBackward(sx[i]!, ws[2 + 4 * i]!, sh[i], dh as tf.Tensor4D, plan1, 'elu', true);
            grads.splice(2 + 4 * i, 4, dk1!, db1!, dk2!, db2!);
            dx = tf.add(dx, dxi!);
          }
          const [ds, dkIn, dbIn] = convBackward(s0, ws[0]!, sx[0], dx, planIn, inAct, true);
          grads[0] = dkIn!;
          grads[1] = dbIn!;
          return [ds!, ...grads];
        }),
      };
    });
    return op(state, ...weights) as tf.Tensor4D;
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
