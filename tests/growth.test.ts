import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { grow, runSteps, step, type GrowOptions } from '../src/growth/grow.js';
import { ResidualUpdateRule } from '../src/layers/ResidualUpdateRule.js';
import { enableWasmTraining } from '../src/backend/wasm/register.js';

const plusOne = (s: tf.Tensor4D) => tf.onesLike(s);

describe.each(BACKENDS)('growth on %s', (name) => {
  beforeAll(async () => {
    await useBackend(name);
    enableWasmTraining();
  });

  it('grows 2x2 to 32x32 in 40 steps: a +1 rule adds 40 to every cell', () => {
    const seed = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2, 1]);
    const { state } = grow(plusOne, seed, { stepsPerDoubling: 8, nDoublings: 4 });
    expect(state.shape).toEqual([2, 32, 32, 1]);
    const v = state.arraySync();
    // Cell (y, x) of the 32x32 grid descends from seed cell (y >> 4, x >> 4).
    expect(v[0]![0]![0]![0]).toBe(41);
    expect(v[0]![31]![0]![0]).toBe(43);
    expect(v[1]![31]![31]![0]).toBe(48);
    tf.dispose([seed, state]);
  });

  it('returns the seed, every step and every doubling with returnStates', () => {
    const seed = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
    const { state, states } = grow(plusOne, seed, { stepsPerDoubling: 2, nDoublings: 2, returnStates: true });
    // seed + 2 steps + (double + 2 steps) * 2
    expect(states!.length).toBe(1 + 2 + 2 * 3);
    expect(states!.map((s) => s.shape[1])).toEqual([2, 2, 2, 4, 4, 4, 8, 8, 8]);
    expectClose(states![states!.length - 1]!.dataSync(), state.dataSync());
    tf.dispose([seed, state, ...states!]);
  });

  it('keeps memory flat: a 40-step rollout leaves only what it returns', () => {
    const rule = new ResidualUpdateRule({ channels: 4, hidden: 4, nBlocks: 1 });
    const seed = tf.randomNormal([1, 2, 2, 4]) as tf.Tensor4D;
    tf.dispose(grow(rule, seed, { stepsPerDoubling: 8, nDoublings: 4 }).state); // builds the weights
    const before = tf.memory().numTensors;
    const { state } = grow(rule, seed, { stepsPerDoubling: 8, nDoublings: 4 });
    expect(tf.memory().numTensors).toBe(before + 1);
    const res = grow(rule, seed, { stepsPerDoubling: 8, nDoublings: 4, returnStates: true });
    expect(tf.memory().numTensors).toBe(before + 2 + res.states!.length);
    tf.dispose([state, res.state, ...res.states!, seed]);
    for (const w of rule.weights) w.dispose();
  });

  it('masks updates per cell with pUpdate and reproduces them with a seed', () => {
    const s0 = tf.zeros([2, 8, 8, 3]) as tf.Tensor4D;
    const a = runSteps(plusOne, s0, { steps: 1, pUpdate: 0.5, seed: 7 }).state;
    const b = runSteps(plusOne, s0, { steps: 1, pUpdate: 0.5, seed: 7 }).state;
    const c = runSteps(plusOne, s0, { steps: 1, pUpdate: 0.5, seed: 8 }).state;
    const av = Array.from(a.dataSync());
    expect(av).toEqual(Array.from(b.dataSync()));
    expect(av).not.toEqual(Array.from(c.dataSync()));
    // One draw per cell, shared by its channels.
    for (let i = 0; i < av.length; i += 3) {
      expect(av[i + 1]).toBe(av[i]);
      expect(av[i + 2]).toBe(av[i]);
    }
    const frac = av.reduce((x, y) => x + y, 0) / av.length;
    expect(frac).toBeGreaterThan(0.25);
    expect(frac).toBeLessThan(0.75);
    tf.dispose([s0, a, b, c]);
  });

  it('zeroes dead cells with alive masking', () => {
    // Only the centre cell is alive (alpha = 1); the rule pushes every channel up by 0.05.
    const buf = tf.buffer([1, 7, 7, 4]);
    buf.set(1, 0, 3, 3, 3);
    const s0 = buf.toTensor() as tf.Tensor4D;
    const rule = (s: tf.Tensor4D) => tf.mul(tf.onesLike(s), 0.05) as tf.Tensor4D;
    const s1 = step(rule, s0, { alive: { channel: 3, threshold: 0.1 } });
    const v = s1.arraySync()[0]!;
    expect(v[3]![3]![3]).toBeCloseTo(1.05, 5);
    expect(v[2]![2]![0]).toBeCloseTo(0.05, 5); // a neighbour of a live cell lives
    expect(v[0]![0]![0]).toBe(0); // far cells stay dead
    tf.dispose([s0, s1]);
  });

  it('checkpointed rollouts give the same gradients as plain ones', () => {
    const rule = new ResidualUpdateRule({ channels: 3, hidden: 4, nBlocks: 1 });
    const seed = tf.randomNormal([3, 2, 2, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    tf.dispose(runSteps(rule, seed, { steps: 1 }).state);
    const vars = rule.trainableWeights.map((w) => w.read() as tf.Variable);
    // Give the zero-initialised last conv some weight so every gradient is non-trivial.
    for (const v of vars) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', v.size));
    const before = tf.memory().numTensors;
    const lossOf = (checkpoint: boolean | number | 'auto', checkpointCells?: number) => tf.variableGrads(() => {
      const { state } = grow(rule, seed, { stepsPerDoubling: 2, nDoublings: 1, checkpoint, checkpointCells, pUpdate: 0.7, seed: 3 });
      return tf.sum(tf.square(state)) as tf.Scalar;
    }, vars);
    const plain = lossOf(false);
    const every = lossOf(true);
    const seg2 = lossOf(2);
    // Backward passes in chunks of one sample (4 cells) and of two samples (8 cells: 2 + 1).
    const chunked = [lossOf(true, 4), lossOf(2, 8), lossOf('auto')];
    expectClose(every.value.dataSync(), plain.value.dataSync(), 1e-5);
    for (const k of Object.keys(plain.grads)) {
      for (const other of [every, seg2, ...chunked]) expectClose(other.grads[k]!.dataSync(), plain.grads[k]!.dataSync(), 1e-4, 1e-5);
    }
    for (const r of [plain, every, seg2, ...chunked]) tf.dispose([r.value, ...Object.values(r.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    seed.dispose();
    for (const w of rule.weights) w.dispose();
  });

  it("checkpoint 'auto' checkpoints only rollouts whose activations exceed the budget", () => {
    let calls = 0;
    class Counting extends ResidualUpdateRule {
      override delta(state: tf.Tensor4D): tf.Tensor4D {
        calls++;
        return super.delta(state);
      }
    }
    const rule = new Counting({ channels: 3, hidden: 4, nBlocks: 1 });
    const seed = tf.randomNormal([2, 2, 2, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    tf.dispose(runSteps(rule, seed, { steps: 1 }).state);
    const vars = rule.trainableWeights.map((w) => w.read() as tf.Variable);
    const before = tf.memory().numTensors;
    const callsWith = (o: Partial<GrowOptions>) => {
      calls = 0;
      const { value, grads } = tf.variableGrads(() => {
        const { state } = grow(rule, seed, { stepsPerDoubling: 2, nDoublings: 1, ...o });
        return tf.sum(state) as tf.Scalar;
      }, vars);
      tf.dispose([value, ...Object.values(grads)]);
      return calls;
    };
    // 4 steps forward; a checkpointed rollout runs them again in the backward pass, except,
    // with 'auto', the first step, which is measured rather than checkpointed.
    expect(callsWith({ checkpoint: 'auto', checkpointBudget: 0 })).toBe(7);
    expect(callsWith({ checkpoint: 'auto', checkpointBudget: 1e9 })).toBe(4);
    expect(callsWith({})).toBe(4); // the default is 'auto' with 1 GiB
    expect(callsWith({ checkpoint: true })).toBe(8);
    expect(callsWith({ checkpoint: false })).toBe(4);
    // Without a tape nothing is measured or recomputed.
    calls = 0;
    tf.dispose(grow(rule, seed, { stepsPerDoubling: 2, nDoublings: 1, checkpointBudget: 0 }).state);
    expect(calls).toBe(4);
    expect(tf.memory().numTensors).toBe(before);
    seed.dispose();
    for (const w of rule.weights) w.dispose();
  });

  it('rejects bad input with named errors', () => {
    const s = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    expect(() => grow(plusOne, tf.zeros([2, 2, 1]) as never, { stepsPerDoubling: 1, nDoublings: 1 })).toThrowError(/Error in grow: seed must be rank 4/);
    expect(() => grow(plusOne, s, { stepsPerDoubling: -1, nDoublings: 1 })).toThrowError(/Error in grow: options.stepsPerDoubling must be an integer >= 0, but got -1/);
    expect(() => grow(plusOne, s, { stepsPerDoubling: 1, nDoublings: 1.5 })).toThrowError(/options.nDoublings must be an integer in \[0, 16\]/);
    expect(() => grow(42 as never, s, { stepsPerDoubling: 1, nDoublings: 1 })).toThrowError(/Error in grow: rule must be an UpdateRule layer or a function/);
    expect(() => runSteps(plusOne, s, { steps: 1, pUpdate: 2 })).toThrowError(/Error in runSteps: options.pUpdate must be a finite number >= 0 and <= 1, but got 2/);
    expect(() => runSteps(plusOne, s, undefined as never)).toThrowError(/Error in runSteps: options must be an object/);
    expect(() => runSteps(plusOne, s, { steps: 2, checkpoint: 0 })).toThrowError(/options.checkpoint must be an integer >= 1/);
    expect(() => grow(plusOne, s, { stepsPerDoubling: 1, nDoublings: 1, checkpointCells: 0 })).toThrowError(/Error in grow: options.checkpointCells must be an integer >= 1, but got 0/);
    expect(() => runSteps(plusOne, s, { steps: 1, checkpointBudget: -1 })).toThrowError(/Error in runSteps: options.checkpointBudget must be a finite number >= 0/);
    expect(() => step(plusOne, s, { seed: 0.5 })).toThrowError(/Error in step: options.seed must be an integer/);
    s.dispose();
  });
});
