/**
 * The VNCA convolutional encoder: image `[batch, inputSize, inputSize, inChannels]` to the
 * posterior parameters `[batch, 2 * zSize]` = `[mean, logStd]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { assertInt, assertState, describe, VncaError } from '../core/errors.js';
import { fastConv2d } from '../ops/conv.js';

/**
 * Options of {@link Encoder}. Every option is echoed by `getConfig()`.
 * @category VAE
 */
export interface EncoderOptions {
  /** Channels of the input image (1 for MNIST, 3 for RGB). Default 1. */
  inChannels?: number;
  /** Latent size; the output has `2 * zSize` channels. Default 256. */
  zSize?: number;
  /**
   * Output channels of the convolutions, in order: the first has stride 1, each later one
   * stride 2. Default `[32, 64, 128, 256, 512]` (the paper's encoder).
   */
  channels?: number[];
  /** Height and width of the (square) input. Default 32 (MNIST 28x28 zero-padded by 2). */
  inputSize?: number;
  /** Odd kernel size of every convolution. Default 5. */
  kernelSize?: number;
  /** Seed for the initial weights; unseeded when omitted. */
  seed?: number;
  /** Layer name (tfjs-layers). Default `encoder_<n>`. */
  name?: string;
  /** Whether the weights are trainable (tfjs-layers). Default true. */
  trainable?: boolean;
}

let encoderCount = 0;

/**
 * The encoder of the paper (DESIGN.md): conv `kernelSize x kernelSize` stride 1
 * (`inChannels -> channels[0]`), ELU; then for each further entry of `channels` a conv
 * stride 2 (`channels[i-1] -> channels[i]`), ELU; flatten; dense to `2 * zSize`
 * (`[mean, logStd]`, see `DiagonalGaussian.fromEncoderOutput`). At the defaults the spatial
 * size goes 32 -> 32 -> 16 -> 8 -> 4 -> 2 and the layer has 5,402,880 parameters.
 *
 * Padding: every convolution pads `floor(kernelSize / 2)` zeros on each side, like the
 * PyTorch reference (`padding=k//2`). The output size is `ceil(size / stride)`, as with
 * tfjs `'same'`, but for stride 2 tfjs `'same'` would pad 1 before and 2 after, shifting the
 * sampling grid by one pixel relative to the reference; the symmetric padding keeps
 * weights ported from PyTorch exact.
 *
 * Weights (created in `build`, named `conv{i}/kernel`, `conv{i}/bias`, `dense/kernel`,
 * `dense/bias` under the layer's name scope, e.g. `encoder_1/conv0/kernel`).
 * `getWeights()` / `setWeights()` order:
 * `conv0/kernel, conv0/bias, conv1/kernel, conv1/bias, ..., dense/kernel, dense/bias`, with
 * - `conv{i}/kernel`: `[kernelSize, kernelSize, cIn, cOut]` (tfjs HWIO; PyTorch `[cOut, cIn, kH, kW]`
 *   maps by transposing with permutation `[2, 3, 1, 0]`);
 * - `conv{i}/bias`: `[cOut]`;
 * - `dense/kernel`: `[f * f * cLast, 2 * zSize]` (PyTorch `Linear.weight` is `[out, in]`: transpose);
 * - `dense/bias`: `[2 * zSize]`.
 *
 * Flatten order: the last feature map `[batch, f, f, cLast]` (NHWC) is flattened by a plain
 * reshape, so dense input row `(h * f + w) * cLast + c` holds feature `(h, w, c)`. The
 * PyTorch reference flattens NCHW, row `c * f * f + h * f + w`; weights ported from it must
 * permute the dense rows accordingly.
 *
 * Initialisation follows PyTorch's defaults (kernel and bias uniform in
 * `±1 / sqrt(fanIn)`), so a fresh encoder matches the reference's starting point.
 *
 * Use it like any tfjs layer: `encoder.apply(x) as tf.Tensor2D`.
 *
 * @example
 * ```ts
 * const encoder = new Encoder({ zSize: 256 });
 * const out = encoder.apply(x) as tf.Tensor2D;       // x: [batch, 32, 32, 1] -> [batch, 512]
 * const q = DiagonalGaussian.fromEncoderOutput(out);
 * ```
 * @category VAE
 */
export class Encoder extends tfl.layers.Layer {
  /** The tfjs-layers class name, `'vnca.Encoder'`. */
  static className = 'vnca.Encoder';

  /** Channels of the input image. */
  readonly inChannels: number;
  /** Latent size; the output has `2 * zSize` channels. */
  readonly zSize: number;
  /** Output channels of the convolutions (first stride 1, the rest stride 2). */
  readonly channels: readonly number[];
  /** Height and width of the input. */
  readonly inputSize: number;
  /** Kernel size of every convolution. */
  readonly kernelSize: number;
  /** Seed of the initial weights, if any. */
  readonly seed: number | undefined;

  private convKernels: tfl.LayerVariable[] = [];
  private convBiases: tfl.LayerVariable[] = [];
  private denseKernel: tfl.LayerVariable | null = null;
  private denseBias: tfl.LayerVariable | null = null;

  /**
   * @param options See {@link EncoderOptions}.
   */
  constructor(options: EncoderOptions = {}) {
    const fn = 'Encoder';
    if (options === null || typeof options !== 'object') {
      throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
    }
    const {
      inChannels = 1, zSize = 256, channels = [32, 64, 128, 256, 512], inputSize = 32, kernelSize = 5, seed,
    } = options;
    assertInt(inChannels, fn, 'inChannels', 1);
    assertInt(zSize, fn, 'zSize', 1);
    if (!Array.isArray(channels) || channels.length === 0) {
      throw new VncaError(fn, 'channels', `must be a non-empty array of positive integers, but got ${describe(channels)}.`);
    }
    channels.forEach((c, i) => assertInt(c, fn, `channels[${i}]`, 1));
    assertInt(inputSize, fn, 'inputSize', 1);
    assertInt(kernelSize, fn, 'kernelSize', 1);
    if (kernelSize % 2 !== 1) throw new VncaError(fn, 'kernelSize', `must be odd, but got ${kernelSize}.`);
    if (seed !== undefined && (typeof seed !== 'number' || !Number.isFinite(seed))) {
      throw new VncaError(fn, 'seed', `must be a finite number or undefined, but got ${describe(seed)}.`);
    }
    super({ name: options.name ?? `encoder_${++encoderCount}`, trainable: options.trainable ?? true });
    this.inChannels = inChannels;
    this.zSize = zSize;
    this.channels = [...channels];
    this.inputSize = inputSize;
    this.kernelSize = kernelSize;
    this.seed = seed;
  }

  /** Height (= width) of the last feature map: `inputSize` halved (rounding up) once per stride-2 conv. */
  get finalSize(): number {
    let s = this.inputSize;
    for (let i = 1; i < this.channels.length; i++) s = Math.ceil(s / 2);
    return s;
  }

  /**
   * Creates the weights. Called by `apply` on first use; `inputShape` must be
   * `[batch, inputSize, inputSize, inChannels]` (batch may be null).
   */
  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    this.checkInputShape(shape, 'Encoder.build', 'inputShape');
    const k = this.kernelSize;
    const seedAt = (i: number) => (this.seed === undefined ? undefined : this.seed + i);
    let cIn = this.inChannels;
    this.channels.forEach((cOut, i) => {
      const fanIn = k * k * cIn;
      this.convKernels.push(this.addWeight(`conv${i}/kernel`, [k, k, cIn, cOut], 'float32', torchKernelInit(seedAt(2 * i))));
      this.convBiases.push(this.addWeight(`conv${i}/bias`, [cOut], 'float32', torchBiasInit(fanIn, seedAt(2 * i + 1))));
      cIn = cOut;
    });
    const f = this.finalSize;
    const flat = f * f * cIn;
    const n = this.channels.length;
    this.denseKernel = this.addWeight('dense/kernel', [flat, 2 * this.zSize], 'float32', torchKernelInit(seedAt(2 * n)));
    this.denseBias = this.addWeight('dense/bias', [2 * this.zSize], 'float32', torchBiasInit(flat, seedAt(2 * n + 1)));
    this.built = true;
  }

  /** `[batch, inputSize, inputSize, inChannels]` -> `[batch, 2 * zSize]`. */
  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [shape[0] ?? null, 2 * this.zSize];
  }

  /**
   * Encodes a batch of images.
   *
   * @param inputs Images, float32 `[batch, inputSize, inputSize, inChannels]` (a single tensor or a one-element array).
   * @returns `[batch, 2 * zSize]`: the mean in the first `zSize` channels, the log standard
   *   deviation in the rest. Owned by the caller.
   */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs?: Record<string, unknown>): tf.Tensor2D {
    const fn = 'Encoder.call';
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (Array.isArray(inputs) && inputs.length !== 1) {
      throw new VncaError(fn, 'inputs', `must be one tensor, but got an array of ${inputs.length}.`);
    }
    assertState(x, fn, 'x');
    this.checkInputShape(x.shape, fn, 'x');
    if (!this.built || this.denseKernel === null || this.denseBias === null) {
      throw new VncaError(fn, 'this', 'must be built first: call encoder.apply(x) rather than encoder.call(x).');
    }
    const denseKernel = this.denseKernel, denseBias = this.denseBias;
    return tf.tidy(() => {
      const pad = (this.kernelSize - 1) / 2;
      let h: tf.Tensor4D = x;
      for (let i = 0; i < this.convKernels.length; i++) {
        // fastConv2d: bias and elu fused, and a gradient made of forward convs (the backends'
        // own conv gradients are ~15x (wasm, input) to ~1000x (cpu, filter) slower).
        h = fastConv2d(h, this.convKernels[i]!.read() as tf.Tensor4D, {
          strides: i === 0 ? 1 : 2, pad, bias: this.convBiases[i]!.read() as tf.Tensor1D, activation: 'elu',
        });
      }
      const flat = tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D;
      return tf.add(tf.matMul(flat, denseKernel.read() as tf.Tensor2D), denseBias.read()) as tf.Tensor2D;
    });
  }

  /** Every constructor option plus the base layer config (`name`, `trainable`). */
  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      inChannels: this.inChannels,
      zSize: this.zSize,
      channels: [...this.channels],
      inputSize: this.inputSize,
      kernelSize: this.kernelSize,
    };
    if (this.seed !== undefined) config['seed'] = this.seed;
    return { ...super.getConfig(), ...config };
  }

  private checkInputShape(shape: tfl.Shape | number[], fn: string, arg: string): void {
    const s = this.inputSize, c = this.inChannels;
    const ok = shape.length === 4
      && (shape[1] == null || shape[1] === s) && (shape[2] == null || shape[2] === s) && (shape[3] == null || shape[3] === c);
    if (!ok) {
      throw new VncaError(fn, arg, `must have shape [batch, ${s}, ${s}, ${c}] (inputSize ${s}, inChannels ${c}), but got [${shape.map(String).join(', ')}].`);
    }
  }
}

/** PyTorch's default kernel init (kaiming_uniform, a = sqrt(5)): uniform in ±1/sqrt(fanIn). */
function torchKernelInit(seed: number | undefined) {
  return tfl.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed });
}

/** PyTorch's default bias init: uniform in ±1/sqrt(fanIn) of the layer's kernel. */
function torchBiasInit(fanIn: number, seed: number | undefined) {
  const bound = 1 / Math.sqrt(fanIn);
  return tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed });
}

let registered = false;

/**
 * Registers {@link Encoder} with the tfjs serialization registry under `'vnca.Encoder'`, so
 * models containing it can be deserialised. Importing the module registers it already;
 * call this when a bundler may have dropped that side effect. Safe to call more than once.
 *
 * @category VAE
 */
export function registerEncoder(): void {
  if (registered) return;
  tf.serialization.registerClass(Encoder);
  registered = true;
}

registerEncoder();
