/**
 * Kernel micro-benchmarks behind the update rule's design: is a 1x1 convolution faster as
 * a matMul, what do transpose flags cost, how do the ways of getting a 3x3 convolution's
 * gradients compare, and what do the element-wise ops cost. Every case runs twice to warm
 * up, then `runs` times; the medians of wall and CPU time are reported (CPU time is what to
 * compare on a loaded machine: it leaves out the time spent waiting for a core).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fastConv2d } from '../src/index.js';
import { transpose2d } from '../src/ops/layout.js';
import type { MicroJob, MicroResult, MicroRow } from './jobs.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median wall and CPU ms of `fn` (which returns tensors to dispose). */
function time(fn: () => tf.Tensor | tf.Tensor[], runs: number): { ms: number; cpuMs: number } {
  const once = (): [number, number] => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    // The cpu and wasm backends run every kernel synchronously, so the result is ready when
    // the op returns (reading it back with dataSync would add a copy to the time).
    const out = tf.tidy(fn); // frees the intermediates too
    const outs = Array.isArray(out) ? out : [out];
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    tf.dispose(outs);
    return [dt, (c.user + c.system) / 1000];
  };
  once();
  once();
  const ts: number[] = [];
  const cs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const [t, c] = once();
    ts.push(t);
    cs.push(c);
  }
  return { ms: median(ts), cpuMs: median(cs) };
}

/**
 * The filter gradient of a 3x3, stride 1, 'same' conv, `[3, 3, ci, co]`, as one matMul of
 * the im2col matrix, built channels-first so that no transpose of it is needed:
 * `cols [9 * ci, b*h*w]` (row `tap * ci + c`) times `dy [b*h*w, co]`.
 */
export function filterGradIm2col(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor {
  const [b, h, w, ci] = x.shape;
  const co = dy.shape[3];
  const xT = tf.transpose(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), [3, 0, 1, 2]); // [ci, b, h+2, w+2]
  const taps: tf.Tensor[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) taps.push(tf.reshape(tf.slice(xT, [0, 0, i, j], [ci, b, h, w]), [ci, b * h * w]));
  }
  return tf.reshape(tf.matMul(tf.concat(taps, 0), tf.reshape(dy, [b * h * w, co])), [3, 3, ci, co]);
}

/** The same gradient as 9 matMuls `[ci, b*h*w] x [b*h*w, co]`, one per tap, stacked. */
export function filterGradTaps(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor {
  const [b, h, w, ci] = x.shape;
  const co = dy.shape[3];
  const xT = tf.transpose(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), [3, 0, 1, 2]);
  const dy2 = tf.reshape(dy, [b * h * w, co]);
  const taps: tf.Tensor[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) taps.push(tf.matMul(tf.reshape(tf.slice(xT, [0, 0, i, j], [ci, b, h, w]), [ci, b * h * w]), dy2));
  }
  return tf.reshape(tf.stack(taps), [3, 3, ci, co]);
}

/** Runs the micro-benchmarks of a job on the current backend. */
export function micro(job: MicroJob): MicroResult {
  const rows: MicroRow[] = [];
  const log = (r: MicroRow) => {
    rows.push(r);
    const g = r.macs > 0 ? `, ${((2 * r.macs) / (r.cpuMs * 1e6)).toFixed(1)} GFLOP/s of CPU time` : '';
    process.stderr.write(`  [micro] ${r.group} | ${r.name} | ${r.shape}: ${r.ms.toFixed(2)} ms wall, ${r.cpuMs.toFixed(2)} ms CPU${g}\n`);
  };
  for (const { batch: b, grid: g, channels: c, hidden: hid } of job.shapes) {
    const rowsN = b * g * g;
    const shape = `b${b} ${g}x${g} c${c} h${hid}`;
    const x = tf.randomNormal([b, g, g, c], 0, 1, 'float32', 1) as tf.Tensor4D;
    const x2 = tf.reshape(x, [rowsN, c]) as tf.Tensor2D;
    const f1 = tf.randomNormal([1, 1, c, hid], 0, 0.1, 'float32', 2) as tf.Tensor4D;
    const f1m = tf.reshape(f1, [c, hid]) as tf.Tensor2D;
    const bias = tf.randomNormal([hid], 0, 0.1, 'float32', 3) as tf.Tensor1D;
    const dz = tf.randomNormal([rowsN, hid], 0, 1, 'float32', 4) as tf.Tensor2D;
    const dz4 = tf.reshape(dz, [b, g, g, hid]) as tf.Tensor4D;
    const f3 = tf.randomNormal([3, 3, c, c], 0, 0.05, 'float32', 5) as tf.Tensor4D;
    const dy3 = tf.randomNormal([b, g, g, c], 0, 1, 'float32', 6) as tf.Tensor4D;
    const m1 = rowsN * c * hid, m3 = rowsN * 9 * c * c;
    const runs = job.runs;

    const fwd = '1x1 conv forward';
    log({ group: fwd, name: 'tf.conv2d', shape, ...time(() => tf.conv2d(x, f1, 1, 'valid'), runs), macs: m1 });
    log({ group: fwd, name: 'tf.matMul (reshaped)', shape, ...time(() => tf.matMul(x2, f1m), runs), macs: m1 });
    log({ group: fwd, name: 'tf.fused.conv2d +bias+elu', shape, ...time(() => tf.fused.conv2d({ x, filter: f1, strides: 1, pad: 'valid', bias, activation: 'elu' }), runs), macs: m1 });
    log({ group: fwd, name: 'tf.fused.matMul +bias+elu', shape, ...time(() => tf.fused.matMul({ a: x2, b: f1m, bias, activation: 'elu' }), runs), macs: m1 });
    log({ group: fwd, name: 'fastConv2d +bias+elu (library)', shape, ...time(() => fastConv2d(x, f1, { bias, activation: 'elu' }), runs), macs: m1 });

    const bwd = '1x1 conv gradient';
    log({ group: bwd, name: 'dx: matMul(dz, W, transposeB)', shape, ...time(() => tf.matMul(dz, f1m, false, true), runs), macs: m1 });
    log({ group: bwd, name: 'dx: matMul(dz, transpose(W))', shape, ...time(() => tf.matMul(dz, tf.transpose(f1m)), runs), macs: m1 });
    log({ group: bwd, name: 'dW: matMul(x, dz, transposeA)', shape, ...time(() => tf.matMul(x2, dz, true, false), runs), macs: m1 });
    log({ group: bwd, name: 'dW: matMul(transpose(x), dz)', shape, ...time(() => tf.matMul(tf.transpose(x2), dz), runs), macs: m1 });
    log({ group: bwd, name: 'transpose(x) alone', shape, ...time(() => tf.transpose(x2), runs), macs: 0 });
    log({ group: bwd, name: 'transpose(x) in two cache-friendly passes (library)', shape, ...time(() => transpose2d(x2), runs), macs: 0 });
    const ones = tf.ones([1, rowsN]) as tf.Tensor2D;
    log({ group: bwd, name: 'bias gradient: tf.sum(dz, [0, 1, 2])', shape, ...time(() => tf.sum(dz4, [0, 1, 2]), runs), macs: 0 });
    log({ group: bwd, name: 'bias gradient: matMul(ones [1, rows], dz)', shape, ...time(() => tf.matMul(ones, dz), runs), macs: 0 });
    // Whole gradient (x, W, bias) of elu(conv1x1(x) + bias): fastConv2d's matMuls vs tf's conv gradients.
    const gradOf = (f: (xx: tf.Tensor4D, ww: tf.Tensor4D, bb: tf.Tensor1D) => tf.Tensor) =>
      () => tf.valueAndGrads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(f(xx as tf.Tensor4D, ww as tf.Tensor4D, bb as tf.Tensor1D), dz4)))([x, f1, bias]).grads;
    log({
      group: bwd, name: 'forward+backward: fastConv2d (matMuls)', shape, macs: 3 * m1,
      ...time(gradOf((xx, ww, bb) => fastConv2d(xx, ww, { bias: bb, activation: 'elu' })), runs),
    });
    log({
      group: bwd, name: 'forward+backward: tf.conv2d + tf gradients', shape, macs: 3 * m1,
      ...time(gradOf((xx, ww, bb) => tf.elu(tf.add(tf.conv2d(xx, ww, 1, 'valid'), bb))), runs),
    });

    const c3 = '3x3 conv';
    log({ group: c3, name: 'forward tf.conv2d', shape, ...time(() => tf.conv2d(x, f3, 1, 'same'), runs), macs: m3 });
    log({
      group: c3, name: 'dx: native Conv2DBackpropInput', shape, macs: m3,
      ...time(() => tf.conv2dTranspose(dy3, f3, [b, g, g, c], 1, 'same'), runs),
    });
    const flipped = tf.transpose(tf.reverse(f3, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    log({ group: c3, name: 'dx: forward conv, flipped filter (fastConv2d)', shape, ...time(() => tf.conv2d(dy3, flipped, 1, 'same'), runs), macs: m3 });
    log({
      group: c3, name: 'dW: Conv2DBackpropFilter kernel (wasm: one forward conv; cpu: the backend\'s own)', shape, macs: m3,
      ...time(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: dy3 }, {
        strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [3, 3, c, c],
      } as unknown as tf.NamedAttrMap) as tf.Tensor, runs),
    });

    // Alternatives for the 3x3 conv's gradients (what fastConv2d could do instead).
    log({ group: c3, name: 'flip taps: tf.reverse(filter, [0, 1])', shape, ...time(() => tf.reverse(f3, [0, 1]), runs), macs: 0 });
    const tapsReversed = tf.tensor1d([8, 7, 6, 5, 4, 3, 2, 1, 0], 'int32');
    log({
      group: c3, name: 'flip taps: gather rows of [9, ci*co]', shape, macs: 0,
      ...time(() => tf.reshape(tf.gather(tf.reshape(f3, [9, c * c]), tapsReversed), [3, 3, c, c]), runs),
    });
    const antiIdentity = tf.reverse(tf.eye(9), [0]) as tf.Tensor2D;
    log({
      group: c3, name: 'flip taps: matMul(anti-identity [9, 9], [9, ci*co])', shape, macs: 0,
      ...time(() => tf.reshape(tf.matMul(antiIdentity, tf.reshape(f3, [9, c * c])), [3, 3, c, c]), runs),
    });
    log({ group: c3, name: 'swap in/out: transpose(filter, [0, 1, 3, 2])', shape, ...time(() => tf.transpose(f3, [0, 1, 3, 2]), runs), macs: 0 });
    log({
      group: c3, name: 'dW: im2col (channels-first slices) + one matMul', shape, macs: m3,
      ...time(() => filterGradIm2col(x, dy3), runs),
    });
    log({
      group: c3, name: 'dW: 9 tap matMuls (channels-first slices)', shape, macs: m3,
      ...time(() => filterGradTaps(x, dy3), runs),
    });
    tf.dispose([tapsReversed, antiIdentity]);

    const ew = 'element-wise';
    log({ group: ew, name: 'elu', shape: `[${x.shape.join(',')}]`, ...time(() => tf.elu(x), runs), macs: 0 });
    log({ group: ew, name: 'add', shape: `[${x.shape.join(',')}]`, ...time(() => tf.add(x, dy3), runs), macs: 0 });
    log({
      group: ew, name: 'elu gradient (where/greater/mul/add)', shape: `[${x.shape.join(',')}]`, macs: 0,
      ...time(() => tf.where(tf.greater(x, 0), dy3, tf.mul(dy3, tf.add(x, 1))), runs),
    });
    tf.dispose([x, x2, f1, f1m, bias, dz, dz4, f3, dy3, flipped, ones]);
  }
  return { kind: 'micro', rows };
}
