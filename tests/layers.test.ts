import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BACKENDS, expectClose, onBackend, useBackend } from './helpers/backends.js';
import {
  PerceptionUpdateRule, ResidualUpdateRule, UpdateRule, registerLayers,
} from '../src/layers/index.js';
import { enableWasmTraining } from '../src/backend/wasm/register.js';
import type { ResidualUpdateRuleOptions } from '../src/layers/ResidualUpdateRule.js';
import { identityKernel, laplacianKernel, sobelXKernel, sobelYKernel } from '../src/core/kernels.js';
import { perceive } from '../src/core/perceive.js';

/** Deterministic values in [-scale, scale). */
function values(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = scale * (s / 2 ** 31 - 1);
  }
  return out;
}

function tensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tensor(values(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
}

/** Replaces every weight of a built layer by deterministic nonzero values. */
function setRandomWeights(layer: tfl.layers.Layer, seed: number): void {
  const ws = layer.getWeights().map((w, i) => tensor(w.shape, seed + i, 0.5));
  layer.setWeights(ws);
  tf.dispose(ws);
}

function disposeWeights(layer: tfl.layers.Layer): void {
  for (const w of layer.weights) w.dispose();
}

/** The weight names without the layer-name prefix. */
function shortNames(layer: tfl.layers.Layer): string[] {
  return layer.weights.map((w) => w.originalName.replace(`${layer.name}/`, ''));
}

/** The paper's rule written with plain tf ops (tfjs's own gradients), weights in getWeights() order. */
function residualReference(state: tf.Tensor4D, w: tf.Tensor[], o: ResidualUpdateRuleOptions): tf.Tensor4D {
  const nBlocks = o.nBlocks ?? 4;
  const conv = (x: tf.Tensor4D, k: tf.Tensor, b?: tf.Tensor): tf.Tensor4D => {
    const y = tf.conv2d(x, k as tf.Tensor4D, 1, 'same');
    return (b ? tf.add(y, b) : y) as tf.Tensor4D;
  };
  let x = conv(state, w[0]!, w[1]!);
  if (o.inActivation === 'elu') x = tf.elu(x);
  for (let i = 0; i < nBlocks; i++) {
    const [k1, b1, k2, b2] = w.slice(2 + 4 * i, 6 + 4 * i);
    x = tf.add(x, conv(tf.elu(conv(x, k1!, b1!)), k2!, b2!)) as tf.Tensor4D;
  }
  return conv(x, w[2 + 4 * nBlocks]!, w[3 + 4 * nBlocks]);
}

const SMALL = { channels: 6, hidden: 5, nBlocks: 2, kernelSize: 3 };

/** Delta, d(sum(delta^2))/d(every weight) and d/d(state) of a small residual rule with fixed weights. */
function residualDeltaAndGrads(useReference = false, options: ResidualUpdateRuleOptions = SMALL): Float32Array[] {
  const rule = new ResidualUpdateRule(options);
  const state = tensor([2, 4, 4, options.channels!], 7) as tf.Tensor4D;
  rule.apply(state);
  setRandomWeights(rule, 100);
  const vars = rule.trainableWeights.map((w) => w.read() as tf.Variable);
  const delta = (s: tf.Tensor4D): tf.Tensor4D => (useReference ? residualReference(s, vars, options) : rule.apply(s) as tf.Tensor4D);
  const out = tf.tidy(() => {
    const d = delta(state);
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(delta(state))) as tf.Scalar, vars);
    const ds = tf.grad((s: tf.Tensor) => tf.sum(tf.square(delta(s as tf.Tensor4D))))(state);
    return [d, ...vars.map((v) => grads[v.name]!), ds].map((t) => t.dataSync() as Float32Array);
  });
  state.dispose();
  disposeWeights(rule);
  return out;
}

describe.each(BACKENDS)('ResidualUpdateRule on %s', (name) => {
  beforeAll(async () => {
    enableWasmTraining(); // for the plain-tf reference's conv2d gradients on wasm
    await useBackend(name);
  });

  it('has the paper\'s 1,182,208 parameters with the defaults', () => {
    const rule = new ResidualUpdateRule();
    rule.build([null, null, null, 256]);
    expect(rule.countParams()).toBe(1_182_208);
    expect(rule.channels).toBe(256);
    disposeWeights(rule);
  });

  it('starts with a zero delta (conv_out is zero) and keeps the shape', () => {
    const rule = new ResidualUpdateRule();
    const state = tensor([1, 2, 2, 256], 1) as tf.Tensor4D;
    const delta = rule.apply(state) as tf.Tensor4D;
    expect(delta.shape).toEqual([1, 2, 2, 256]);
    expect(tf.max(tf.abs(delta)).dataSync()[0]).toBe(0);
    // conv_in and the blocks start nonzero.
    expect(tf.max(tf.abs(rule.getWeights()[0]!)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([state, delta]);
    rule.dispose();
  });

  it('has stable weight names, shapes and order', () => {
    const rule = new ResidualUpdateRule({ ...SMALL, name: 'rule_names' });
    const state = tf.zeros([1, 3, 3, 6]);
    (rule.apply(state) as tf.Tensor).dispose();
    const c = 6, h = 5;
    expect(shortNames(rule)).toEqual([
      'conv_in/kernel', 'conv_in/bias',
      'block0/conv1/kernel', 'block0/conv1/bias', 'block0/conv2/kernel', 'block0/conv2/bias',
      'block1/conv1/kernel', 'block1/conv1/bias', 'block1/conv2/kernel', 'block1/conv2/bias',
      'conv_out/kernel', 'conv_out/bias',
    ]);
    expect(rule.weights[0]!.originalName).toBe('rule_names/conv_in/kernel');
    expect(rule.getWeights().map((w) => w.shape)).toEqual([
      [3, 3, c, c], [c],
      [1, 1, c, h], [h], [1, 1, h, c], [c],
      [1, 1, c, h], [h], [1, 1, h, c], [c],
      [1, 1, c, c], [c],
    ]);
    // Built directly (not through apply) the names carry no layer prefix.
    const direct = new ResidualUpdateRule({ ...SMALL, nBlocks: 0 });
    direct.build([null, null, null, 6]);
    expect(direct.weights.map((w) => w.originalName)).toEqual(['conv_in/kernel', 'conv_in/bias', 'conv_out/kernel', 'conv_out/bias']);
    state.dispose();
    rule.dispose();
    disposeWeights(direct);
  });

  it('computes the paper\'s formula (values and gradients equal a plain-tf reference)', () => {
    const variants: ResidualUpdateRuleOptions[] = [
      SMALL,
      { ...SMALL, inActivation: 'elu', outBias: false },
      { ...SMALL, nBlocks: 0, inActivation: 'elu' },
    ];
    for (const o of variants) {
      const actual = residualDeltaAndGrads(false, o);
      const expected = residualDeltaAndGrads(true, o);
      expect(actual).toHaveLength(expected.length);
      actual.forEach((a, i) => expectClose(a, expected[i]!, 1e-4, 1e-5));
    }
  });

  it('trains: optimizer.minimize changes every weight and lowers the loss', () => {
    const rule = new ResidualUpdateRule(SMALL);
    const state = tensor([2, 4, 4, 6], 3) as tf.Tensor4D;
    const target = tensor([2, 4, 4, 6], 4) as tf.Tensor4D;
    (rule.apply(state) as tf.Tensor).dispose();
    const before = rule.getWeights().map((w) => w.clone()); // getWeights() returns the variables themselves
    const optimizer = tf.train.adam(1e-2);
    const loss = (): tf.Scalar => tf.mean(tf.square(tf.sub(rule.apply(state) as tf.Tensor4D, target)));
    const l0 = tf.tidy(() => loss().dataSync()[0]!);
    for (let i = 0; i < 3; i++) optimizer.minimize(loss)?.dispose();
    const l1 = tf.tidy(() => loss().dataSync()[0]!);
    expect(l1).toBeLessThan(l0);
    rule.getWeights().forEach((w, i) => {
      expect(tf.max(tf.abs(tf.sub(w, before[i]!))).dataSync()[0]).toBeGreaterThan(0);
    });
    tf.dispose([state, target, before]);
    optimizer.dispose();
    rule.dispose();
  });

  it('keeps the tensor count flat across calls and gradients', () => {
    const rule = new ResidualUpdateRule(SMALL);
    const state = tensor([1, 4, 4, 6], 5) as tf.Tensor4D;
    (rule.apply(state) as tf.Tensor).dispose();
    const vars = rule.trainableVariables;
    expect(vars).toHaveLength(12);
    expect(vars[0]).toBeInstanceOf(tf.Variable);
    const step = (): void => {
      (rule.apply(state) as tf.Tensor).dispose();
      const { value, grads } = tf.variableGrads(() => tf.sum(rule.apply(state) as tf.Tensor4D) as tf.Scalar, vars);
      tf.dispose([value, grads]);
    };
    step();
    const count = tf.memory().numTensors;
    step();
    step();
    expect(tf.memory().numTensors).toBe(count);
    state.dispose();
    rule.dispose();
  });

  it('round-trips through getConfig / fromConfig with identical outputs', () => {
    registerLayers();
    registerLayers(); // idempotent
    const rule = new ResidualUpdateRule({ ...SMALL, kernelSize: 5, name: 'rt_rule', trainable: false });
    const state = tensor([1, 4, 4, 6], 9) as tf.Tensor4D;
    (rule.apply(state) as tf.Tensor).dispose();
    setRandomWeights(rule, 50);
    const config = rule.getConfig();
    expect(config).toMatchObject({ channels: 6, hidden: 5, nBlocks: 2, kernelSize: 5, name: 'rt_rule', trainable: false });
    const [cls, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap['vnca.ResidualUpdateRule']!;
    const copy = fromConfig(cls, JSON.parse(JSON.stringify(config)) as tf.serialization.ConfigDict) as ResidualUpdateRule;
    expect(copy).toBeInstanceOf(ResidualUpdateRule);
    expect(copy.getConfig()).toEqual(config);
    copy.build([null, null, null, 6]);
    copy.setWeights(rule.getWeights());
    const [a, b] = [rule.apply(state) as tf.Tensor, copy.apply(state) as tf.Tensor];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(rule.trainableWeights).toHaveLength(0);
    expect(rule.nonTrainableWeights).toHaveLength(12);
    expect(rule.weights.every((w) => !(w.read() as tf.Variable).trainable)).toBe(true);
    tf.dispose([state, a, b]);
    rule.dispose();
    disposeWeights(copy); // built and used without building in apply: Layer.dispose() refuses
  });

  it('rejects bad options and inputs', () => {
    expect(() => new ResidualUpdateRule({ channels: 0 })).toThrowError(/Error in ResidualUpdateRule: channels must be an integer >= 1, but got 0/);
    expect(() => new ResidualUpdateRule({ hidden: 1.5 })).toThrowError(/Error in ResidualUpdateRule: hidden must be an integer >= 1, but got 1.5/);
    expect(() => new ResidualUpdateRule({ nBlocks: -1 })).toThrowError(/nBlocks must be an integer >= 0/);
    expect(() => new ResidualUpdateRule({ kernelSize: 2 })).toThrowError(/kernelSize must be odd, but got 2/);
    expect(() => new ResidualUpdateRule({ name: '' })).toThrowError(/name must be a non-empty string/);
    expect(() => new ResidualUpdateRule('big' as never)).toThrowError(/options must be an object, but got "big"/);
    const rule = new ResidualUpdateRule({ channels: 4, hidden: 4, nBlocks: 1 });
    expect(() => rule.build([null, null, null, 5])).toThrowError(/Error in ResidualUpdateRule.build: inputShape must have 4 channels/);
    const flat = tf.zeros([2, 2, 4]);
    expect(() => rule.apply(flat)).toThrowError(/build: inputShape must be \[batch, height, width, channels\]/);
    rule.build([null, null, null, 4]);
    const wrong = tf.zeros([1, 2, 2, 3]);
    expect(() => rule.apply(wrong)).toThrowError(/Error in ResidualUpdateRule.call: state must have 4 channels, but got shape \[1, 2, 2, 3\]/);
    expect(() => rule.apply(flat)).toThrowError(/Error in ResidualUpdateRule.call: state must be rank 4/);
    tf.dispose([wrong, flat]);
    disposeWeights(rule);
  });
});

describe('ResidualUpdateRule on cpu and wasm agree', () => {
  beforeAll(() => enableWasmTraining());

  it('forward values and gradients of sum(delta^2) with respect to every weight', async () => {
    const cpu = await onBackend('cpu', () => residualDeltaAndGrads());
    const wasm = await onBackend('wasm', () => residualDeltaAndGrads());
    expect(wasm).toHaveLength(14);
    wasm.forEach((a, i) => expectClose(a, cpu[i]!, 1e-4, 1e-5));
  });
});

/**
 * The custom rule of the UpdateRule doc comment: one 1x1 convolution, written with plain
 * tf.conv2d (its filter gradient on wasm needs enableWasmTraining()).
 */
class LinearRule extends UpdateRule {
  static override className = 'test.LinearRule';
  private kernel!: tfl.LayerVariable;
  override build(): void {
    this.kernel = this.addWeight('kernel', [1, 1, this.channels, this.channels], 'float32',
      tfl.initializers.glorotUniform({}));
    this.built = true;
  }
  delta(state: tf.Tensor4D): tf.Tensor4D {
    return tf.conv2d(state, this.kernel.read() as tf.Tensor4D, 1, 'same');
  }
}
tf.serialization.registerClass(LinearRule);

describe.each(BACKENDS)('a custom UpdateRule subclass on %s', (name) => {
  beforeAll(async () => {
    enableWasmTraining();
    await useBackend(name);
  });

  it('runs, counts its parameters and trains one step', () => {
    const rule = new LinearRule({ channels: 4 });
    const state = tensor([2, 3, 3, 4], 11) as tf.Tensor4D;
    const delta = rule.apply(state) as tf.Tensor4D;
    expect(delta.shape).toEqual([2, 3, 3, 4]);
    expect(rule.countParams()).toBe(16);
    expect(rule.computeOutputShape([null, 3, 3, 4])).toEqual([null, 3, 3, 4]);
    const before = rule.getWeights()[0]!.clone();
    const optimizer = tf.train.sgd(0.1);
    optimizer.minimize(() => tf.mean(tf.square(rule.apply(state) as tf.Tensor4D)) as tf.Scalar)?.dispose();
    expect(tf.max(tf.abs(tf.sub(rule.getWeights()[0]!, before))).dataSync()[0]).toBeGreaterThan(0);
    expect(rule.getConfig()).toMatchObject({ channels: 4 });
    tf.dispose([state, delta, before]);
    optimizer.dispose();
    rule.dispose();
  });

  it('accepts an array input and unwraps it', () => {
    const rule = new LinearRule({ channels: 2 });
    const state = tensor([1, 2, 2, 2], 12) as tf.Tensor4D;
    const a = rule.apply(state) as tf.Tensor;
    const b = rule.call([state]);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([state, a, b]);
    rule.dispose();
  });
});

describe.each(BACKENDS)('PerceptionUpdateRule on %s', (name) => {
  beforeAll(async () => {
    enableWasmTraining(); // for the plain-tf reference's conv2d gradients on wasm
    await useBackend(name);
  });

  it('maps 48 -> 128 -> 16 with 8,336 parameters and starts at zero', () => {
    const rule = new PerceptionUpdateRule();
    const state = tensor([1, 5, 5, 16], 1) as tf.Tensor4D;
    const delta = rule.apply(state) as tf.Tensor4D;
    expect(delta.shape).toEqual([1, 5, 5, 16]);
    expect(tf.max(tf.abs(delta)).dataSync()[0]).toBe(0);
    expect(rule.perceptionChannels).toBe(48);
    expect(rule.countParams()).toBe(8_336);
    expect(shortNames(rule)).toEqual(['fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias']);
    expect(rule.getWeights().map((w) => w.shape)).toEqual([[1, 1, 48, 128], [128], [1, 1, 128, 16], [16]]);
    tf.dispose([state, delta]);
    rule.dispose();
  });

  it('equals perceive + relu MLP (values and gradients)', () => {
    const rule = new PerceptionUpdateRule({ channels: 3, hidden: 5 });
    const state = tensor([2, 4, 4, 3], 2) as tf.Tensor4D;
    (rule.apply(state) as tf.Tensor).dispose();
    setRandomWeights(rule, 20);
    const vars = rule.trainableWeights.map((w) => w.read() as tf.Variable);
    const reference = (): tf.Tensor4D => {
      const p = perceive(state, [identityKernel(), sobelXKernel(), sobelYKernel()]);
      const h = tf.relu(tf.add(tf.conv2d(p, vars[0] as tf.Tensor4D, 1, 'same'), vars[1]!)) as tf.Tensor4D;
      return tf.add(tf.conv2d(h, vars[2] as tf.Tensor4D, 1, 'same'), vars[3]!) as tf.Tensor4D;
    };
    tf.tidy(() => {
      expectClose((rule.apply(state) as tf.Tensor).dataSync(), reference().dataSync(), 1e-4, 1e-6);
      const g1 = tf.variableGrads(() => tf.sum(tf.square(rule.apply(state) as tf.Tensor4D)) as tf.Scalar, vars).grads;
      const g2 = tf.variableGrads(() => tf.sum(tf.square(reference())) as tf.Scalar, vars).grads;
      for (const v of vars) expectClose(g1[v.name]!.dataSync(), g2[v.name]!.dataSync(), 1e-4, 1e-5);
      // And with respect to the state (what a rollout backpropagates through).
      const gs1 = tf.grad((s: tf.Tensor) => tf.sum(tf.square(rule.apply(s) as tf.Tensor4D)))(state);
      const gs2 = tf.grad((s: tf.Tensor) => {
        const p = perceive(s as tf.Tensor4D);
        const h = tf.relu(tf.add(tf.conv2d(p, vars[0] as tf.Tensor4D, 1, 'same'), vars[1]!)) as tf.Tensor4D;
        return tf.sum(tf.square(tf.add(tf.conv2d(h, vars[2] as tf.Tensor4D, 1, 'same'), vars[3]!)));
      })(state);
      expectClose(gs1.dataSync(), gs2.dataSync(), 1e-4, 1e-5);
    });
    state.dispose();
    rule.dispose();
  });

  it('takes custom kernels and round-trips through getConfig / fromConfig', () => {
    const kernels = [identityKernel(), laplacianKernel()];
    const rule = new PerceptionUpdateRule({ channels: 4, hidden: 6, kernels, name: 'rt_perception' });
    kernels[0]![1]![1] = 99; // the rule keeps its own copy
    const state = tensor([1, 4, 4, 4], 3) as tf.Tensor4D;
    (rule.apply(state) as tf.Tensor).dispose();
    setRandomWeights(rule, 30);
    expect(rule.perceptionChannels).toBe(8);
    expect(rule.kernels[0]![1]![1]).toBe(1);
    const config = rule.getConfig();
    expect(config).toMatchObject({ channels: 4, hidden: 6, kernels: [identityKernel(), laplacianKernel()], name: 'rt_perception' });
    const [cls, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap['vnca.PerceptionUpdateRule']!;
    const copy = fromConfig(cls, JSON.parse(JSON.stringify(config)) as tf.serialization.ConfigDict) as PerceptionUpdateRule;
    expect(copy.getConfig()).toEqual(config);
    copy.build([null, null, null, 4]);
    copy.setWeights(rule.getWeights());
    const [a, b] = [rule.apply(state) as tf.Tensor, copy.apply(state) as tf.Tensor];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([state, a, b]);
    rule.dispose();
    disposeWeights(copy); // built and used without building in apply: Layer.dispose() refuses
  });

  it('keeps the tensor count flat', () => {
    const rule = new PerceptionUpdateRule({ channels: 4, hidden: 8 });
    const state = tensor([1, 6, 6, 4], 4) as tf.Tensor4D;
    (rule.apply(state) as tf.Tensor).dispose();
    const count = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) (rule.apply(state) as tf.Tensor).dispose();
    expect(tf.memory().numTensors).toBe(count);
    state.dispose();
    rule.dispose();
  });

  it('rejects bad options', () => {
    expect(() => new PerceptionUpdateRule({ hidden: 0 })).toThrowError(/Error in PerceptionUpdateRule: hidden must be an integer >= 1, but got 0/);
    expect(() => new PerceptionUpdateRule({ channels: 2.5 })).toThrowError(/channels must be an integer >= 1, but got 2.5/);
    expect(() => new PerceptionUpdateRule({ kernels: [] })).toThrowError(/kernels must be a non-empty array/);
    expect(() => new PerceptionUpdateRule({ kernels: [[[1, 0], [0, 1]]] })).toThrowError(/kernels\[0\] must be a square array of finite numbers of the same odd size/);
    expect(() => new PerceptionUpdateRule({ kernels: [identityKernel(), [[1]]] })).toThrowError(/kernels\[1\]/);
    expect(() => new PerceptionUpdateRule({ kernels: [[[0, 0, 0], [0, NaN, 0], [0, 0, 0]]] })).toThrowError(/kernels\[0\]/);
  });
});

afterAll(() => tf.disposeVariables());
