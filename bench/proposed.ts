/**
 * PROPOSAL, measured by the benchmark (not used by the library): the update rule's
 * convolution with three changes to `fastConv2d` (src/backend/wasmTraining.ts) that the
 * profile of a wasm training step points at. Values and gradients are the same.
 *
 * 1. The 3x3 conv's input gradient needs the filter with its taps flipped. `tf.reverse`
 *    on wasm takes ~22 ms for a [3, 3, 256, 256] filter, once per step (40 times a
 *    trainStep); a matMul of the anti-identity [k*k, k*k] with the filter as
 *    [k*k, ci*co] gives the same numbers (exactly: one 1 per row) in ~0.6 ms.
 * 2. Bias gradients: `tf.sum(dz, [0, 1, 2])` reduces over non-innermost axes, which the
 *    wasm backend does by transposing first (~3 ms at [4, 32, 32, 256]); a matMul of a row
 *    of ones with dz `[rows, co]` takes ~0.2 ms.
 * 3. Under a gradient tape `tf.fused.matMul` refuses to fuse a non-linear activation, so
 *    every `elu` 1x1 conv runs as matMul + add + elu. Inside the custom gradient nothing is
 *    taped, so the fused kernel can be called directly.
 *
 * Supports what the residual update rule uses: stride 1, 'same' padding, odd square
 * kernels, activations 'linear' and 'elu'.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ResidualUpdateRule } from '../src/index.js';

/** A [n, n] matrix with ones on the anti-diagonal, cached per n (kept out of every tidy). */
const antiIdentities = new Map<number, tf.Tensor2D>();
function antiIdentity(n: number): tf.Tensor2D {
  let a = antiIdentities.get(n);
  if (!a) {
    a = tf.tidy(() => tf.keep(tf.reverse(tf.eye(n), [0]) as tf.Tensor2D));
    antiIdentities.set(n, a);
  }
  return a;
}

/** `dy * elu'(x)` written with the output `y` of the elu. */
function eluGrad(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return tf.where(tf.greater(y, 0), dy, tf.mul(dy, tf.add(y, 1)));
}

/** Sum of `dz` `[b, h, w, co]` over all but the last axis, as a matMul: `[co]`. */
function biasGrad(dz: tf.Tensor4D): tf.Tensor1D {
  const [b, h, w, co] = dz.shape;
  return tf.reshape(tf.matMul(tf.ones([1, b * h * w]), tf.reshape(dz, [b * h * w, co])), [co]);
}

/**
 * `activation(conv2d(x, filter, 1, 'same') + bias)` with the gradient described in the module comment.
 * `x` `[b, h, w, ci]`, `filter` `[k, k, ci, co]` (k odd), `bias` `[co]`; returns `[b, h, w, co]`.
 */
export function proposedConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, activation: 'linear' | 'elu'): tf.Tensor4D {
  const [b, h, w, ci] = x.shape;
  const [k, , , co] = filter.shape;
  const rows = b * h * w;
  const pointwise = k === 1;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xt, ft, bt] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D];
    let y: tf.Tensor4D;
    if (pointwise) {
      // The kernel takes rank-3 (batched) operands, as tf.fused.matMul passes them.
      const y3 = tf.engine().runKernel('_FusedMatMul', { a: tf.reshape(xt, [1, rows, ci]), b: tf.reshape(ft, [1, ci, co]), bias: bt },
        { transposeA: false, transposeB: false, activation, leakyreluAlpha: 0.2 } as unknown as tf.NamedAttrMap) as tf.Tensor3D;
      y = tf.reshape(y3, [b, h, w, co]);
    } else {
      y = tf.engine().runKernel('FusedConv2D', { x: xt, filter: ft, bias: bt }, {
        strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined, activation, leakyreluAlpha: 0.2,
      } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    }
    save(activation === 'linear' ? [xt, ft] : [xt, ft, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xs, fs, ys] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D | undefined];
        const dz = (activation === 'elu' ? eluGrad(dy, ys!) : dy) as tf.Tensor4D;
        const db = biasGrad(dz);
        if (pointwise) {
          const dz2 = tf.reshape(dz, [rows, co]) as tf.Tensor2D;
          const f2 = tf.reshape(fs, [ci, co]) as tf.Tensor2D;
          const dx = tf.reshape(tf.matMul(dz2, tf.transpose(f2)), xs.shape);
          const df = tf.reshape(tf.matMul(tf.transpose(tf.reshape(xs, [rows, ci])), dz2), fs.shape);
          return [dx, df, db];
        }
        // dx: 'same' correlation of dz with the tap-flipped, in/out-swapped filter.
        const flipped = tf.reshape(tf.matMul(antiIdentity(k * k), tf.reshape(fs, [k * k, ci * co])), [k, k, ci, co]);
        const dx = tf.conv2d(dz, tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D, 1, 'same');
        // dW: one forward conv with batch and channels swapped (as src/backend/wasmTraining.ts does).
        const p = (k - 1) / 2;
        const xT = tf.transpose(tf.pad(xs, [[0, 0], [p, p], [p, p], [0, 0]]), [3, 1, 2, 0]) as tf.Tensor4D; // [ci, h+2p, w+2p, b]
        const dzF = tf.transpose(dz, [1, 2, 0, 3]) as tf.Tensor4D; // [h, w, b, co]
        const df = tf.transpose(tf.conv2d(xT, dzF, 1, 'valid'), [1, 2, 0, 3]); // [k, k, ci, co]
        return [dx, df, db];
      },
    };
  });
  return op(x, filter, bias) as tf.Tensor4D;
}

/**
 * The paper's update rule computed with {@link proposedConv2d}: the same weights, names
 * and numbers as {@link ResidualUpdateRule}.
 */
export class ProposedResidualUpdateRule extends ResidualUpdateRule {
  static override className = 'vncaBench.ProposedResidualUpdateRule';

  override delta(state: tf.Tensor4D): tf.Tensor4D {
    // Weights in build() order: conv_in kernel, bias; per block conv1 kernel, bias, conv2 kernel, bias; conv_out kernel, bias.
    const wts = this.trainableWeights.map((v) => v.read());
    let i = 0;
    const next = () => wts[i++]!;
    let x = proposedConv2d(state, next() as tf.Tensor4D, next() as tf.Tensor1D, 'linear');
    for (let blk = 0; blk < this.nBlocks; blk++) {
      const hidden = proposedConv2d(x, next() as tf.Tensor4D, next() as tf.Tensor1D, 'elu');
      x = tf.add(x, proposedConv2d(hidden, next() as tf.Tensor4D, next() as tf.Tensor1D, 'linear'));
    }
    return proposedConv2d(x, next() as tf.Tensor4D, next() as tf.Tensor1D, 'linear');
  }
}
