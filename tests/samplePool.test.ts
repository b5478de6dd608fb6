import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { BACKENDS, useBackend } from './helpers/backends.js';
import { SamplePool, damageSubset } from '../src/core/SamplePool.js';

/** `n` states `[n, 2, 3, 2]` where every value of state i equals i. */
const numbered = (n: number) => tf.tidy(() => tf.mul(tf.ones([n, 2, 3, 2]), tf.reshape(tf.range(0, n), [n, 1, 1, 1])) as tf.Tensor4D);
/** The value each state of a batch holds (its first element). */
const labels = (t: tf.Tensor) => {
  const a = t.arraySync() as number[][][][];
  return a.map((s) => s[0]![0]![0]!);
};

describe.each(BACKENDS)('SamplePool on %s', (name) => {
  beforeAll(() => useBackend(name));
  let pool: SamplePool | undefined;
  afterEach(() => {
    pool?.dispose();
    pool = undefined;
  });

  it('copies its input, reports size and shape, and reads entries back', () => {
    const x = numbered(5);
    pool = new SamplePool(x, { seed: 1 });
    x.dispose(); // the pool kept copies
    expect(pool.size).toBe(5);
    expect(pool.stateShape).toEqual([2, 3, 2]);
    expect(pool.hasPayload).toBe(false);
    const got = pool.get([4, 0, 2]);
    expect(got.indices).toEqual([4, 0, 2]);
    expect(got.states.shape).toEqual([3, 2, 3, 2]);
    expect(labels(got.states)).toEqual([4, 0, 2]);
    expect(got.payload).toBeUndefined();
    got.states.dispose();
  });

  it('samples distinct entries, reproducibly for a seed', () => {
    const x = numbered(10);
    const a = new SamplePool(x, { seed: 7 });
    const b = new SamplePool(x, { seed: 7 });
    const c = new SamplePool(x, { seed: 8 });
    x.dispose();
    const draws = (p: SamplePool) => Array.from({ length: 4 }, () => {
      const s = p.sample(6);
      expect(new Set(s.indices).size).toBe(6);
      expect(labels(s.states)).toEqual(s.indices); // each state comes with its own index
      s.states.dispose();
      return s.indices;
    });
    const da = draws(a), db = draws(b), dc = draws(c);
    expect(da).toEqual(db);
    expect(dc).not.toEqual(da);
    const all = a.sample(10);
    expect([...all.indices].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    all.states.dispose();
    [a, b, c].forEach((p) => p.dispose());
  });

  it('replaces entries by index and leaves the others alone', () => {
    const x = numbered(4);
    pool = new SamplePool(x, { seed: 0 });
    x.dispose();
    const fresh = tf.tidy(() => tf.mul(tf.ones([2, 2, 3, 2]), tf.reshape(tf.tensor1d([10, 30]), [2, 1, 1, 1])) as tf.Tensor4D);
    pool.replace([1, 3], fresh);
    fresh.dispose(); // the pool kept copies
    const got = pool.get([0, 1, 2, 3]);
    expect(labels(got.states)).toEqual([0, 10, 2, 30]);
    got.states.dispose();
  });

  it('keeps a payload beside each state through sample and replace', () => {
    const x = numbered(6);
    const payload = tf.tensor2d([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5], [6, 2], 'int32');
    pool = new SamplePool(x, { seed: 3, payload });
    tf.dispose([x, payload]);
    expect(pool.hasPayload).toBe(true);
    const s = pool.sample(4);
    expect(s.payload!.shape).toEqual([4, 2]);
    expect(s.payload!.dtype).toBe('int32');
    expect((s.payload!.arraySync() as number[][]).map((r) => r[0])).toEqual(s.indices);
    // Replace the states only: payloads stay.
    pool.replace(s.indices, s.states);
    // Replace both.
    const p2 = tf.tensor2d([9, 9], [1, 2], 'int32');
    const s2 = tf.zeros([1, 2, 3, 2]) as tf.Tensor4D;
    pool.replace([5], s2, p2);
    const got = pool.get([4, 5]);
    expect(got.payload!.arraySync()).toEqual([[4, 4], [9, 9]]);
    expect(labels(got.states)).toEqual([4, 0]);
    tf.dispose([s.states, s.payload!, p2, s2, got.states, got.payload!]);
  });

  it('fills a pool from one state, with a shared or per-entry payload', () => {
    const seed = tf.fill([1, 2, 3, 2], 7) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    pool = SamplePool.fill(seed, 50, { seed: 0, payload: tf.tensor1d([2]) });
    // 50 entries + 50 payload entries (+ the temporary payload argument above).
    expect(tf.memory().numTensors - before).toBe(101);
    expect(pool.size).toBe(50);
    const s = pool.sample(3);
    expect(labels(s.states)).toEqual([7, 7, 7]);
    expect(s.payload!.arraySync()).toEqual([2, 2, 2]);
    tf.dispose([s.states, s.payload!]);
    const per = tf.range(0, 4);
    const p4 = SamplePool.fill(seed, 4, { payload: per });
    const g = p4.get([3, 1]);
    expect(g.payload!.arraySync()).toEqual([3, 1]);
    tf.dispose([g.states, g.payload!, per, seed]);
    p4.dispose();
  });

  it('keeps memory flat across sample/replace rounds and frees everything on dispose', () => {
    const x = numbered(8);
    const before = tf.memory().numTensors;
    pool = new SamplePool(x, { seed: 2, payload: tf.tidy(() => tf.ones([8, 3])) });
    const afterCreate = tf.memory().numTensors;
    for (let r = 0; r < 3; r++) {
      const s = pool.sample(4);
      const grown = tf.tidy(() => tf.add(s.states, 1) as tf.Tensor4D);
      const hurt = damageSubset(grown, 2, { rng: () => 0.5 });
      pool.replace(s.indices, hurt, s.payload);
      tf.dispose([s.states, s.payload!, grown, hurt]);
      expect(tf.memory().numTensors).toBe(afterCreate);
    }
    pool.dispose();
    pool.dispose(); // harmless
    // The temporary payload argument is the one tensor left besides x.
    expect(tf.memory().numTensors).toBe(before + 1);
    x.dispose();
    pool = undefined;
  });

  it('rejects bad input with messages that name the argument', () => {
    const x = numbered(3);
    expect(() => new SamplePool(tf.zeros([2, 2]) as never)).toThrowError(/Error in SamplePool: states must be rank 4/);
    expect(() => new SamplePool(x, { payload: tf.zeros([2]) })).toThrowError(/options\.payload must have shape \[3, \.\.\.\]/);
    expect(() => SamplePool.fill(x, 4)).toThrowError(/SamplePool.fill: state must have batch 1/);
    pool = new SamplePool(x, { seed: 0 });
    expect(() => pool!.sample(4)).toThrowError(/sample: batchSize must be an integer in \[1, 3\], but got 4/);
    expect(() => pool!.sample(0)).toThrowError(/batchSize must be an integer in \[1, 3\]/);
    expect(() => pool!.get([0, 3])).toThrowError(/indices\[1\] must be an integer in \[0, 2\], but got 3/);
    expect(() => pool!.get([1, 1])).toThrowError(/indices must be distinct, but 1 appears twice/);
    expect(() => pool!.replace([0], tf.zeros([2, 2, 3, 2]) as tf.Tensor4D)).toThrowError(/replace: states must have shape \[1, 2, 3, 2\], but got \[2, 2, 3, 2\]/);
    expect(() => pool!.replace([0], tf.zeros([1, 2, 3, 2]) as tf.Tensor4D, tf.zeros([1]))).toThrowError(/payload must be omitted/);
    const dead = new SamplePool(x);
    dead.dispose();
    expect(() => dead.sample(1)).toThrowError(/is a disposed SamplePool/);
    x.dispose();
  });
});

describe.each(BACKENDS)('damageSubset on %s', (name) => {
  beforeAll(() => useBackend(name));

  /** Number of zeroed cells in each entry (all channels zero). */
  const zeroedCells = (t: tf.Tensor4D) => {
    const a = t.arraySync();
    return a.map((img) => img.flat().filter((cell) => cell.every((v) => v === 0)).length);
  };

  it('zeroes a circle in exactly the chosen entries', () => {
    const x = tf.ones([4, 10, 10, 3]) as tf.Tensor4D;
    const out = damageSubset(x, [1, 3], { radius: 2, rng: () => 0.5 });
    // rng 0.5: centre (4.5, 4.5), radius 2: the 12 cells within distance 2.
    expect(zeroedCells(out)).toEqual([0, 12, 0, 12]);
    expect(out.shape).toEqual([4, 10, 10, 3]);
    tf.dispose([x, out]);
  });

  it('damages `count` random distinct entries, with squares of a chosen size', () => {
    const x = tf.ones([6, 8, 8, 2]) as tf.Tensor4D;
    let k = 0;
    const rng = () => ((k++ * 0.37) % 1);
    const out = damageSubset(x, 3, { shape: 'square', size: 3, rng });
    const z = zeroedCells(out);
    expect(z.filter((v) => v === 9)).toHaveLength(3);
    expect(z.filter((v) => v === 0)).toHaveLength(3);
    // Default square side: half the grid.
    const half = damageSubset(x, [0], { shape: 'square', rng: () => 0 });
    expect(zeroedCells(half)[0]).toBe(16);
    const none = damageSubset(x, 0);
    expect(zeroedCells(none)).toEqual([0, 0, 0, 0, 0, 0]);
    tf.dispose([x, out, half, none]);
  });

  it('draws circle radii within the range and leaks nothing', () => {
    const x = tf.ones([8, 40, 40, 1]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const out = damageSubset(x, 8, { radius: [2, 8], rng: Math.random });
    expect(tf.memory().numTensors).toBe(before + 1);
    for (const z of zeroedCells(out)) {
      expect(z).toBeGreaterThanOrEqual(4); // a disc of radius >= 2 covers at least 4 cells
      expect(z).toBeLessThanOrEqual(Math.ceil(Math.PI * 8.5 * 8.5));
    }
    tf.dispose([x, out]);
  });

  it('rejects bad input', () => {
    const x = tf.ones([2, 4, 4, 1]) as tf.Tensor4D;
    expect(() => damageSubset(x, 3)).toThrowError(/damageSubset: which must be an integer in \[0, 2\], but got 3/);
    expect(() => damageSubset(x, [0, 0])).toThrowError(/which must hold distinct indices/);
    expect(() => damageSubset(x, [2])).toThrowError(/which\[0\] must be an integer in \[0, 1\]/);
    expect(() => damageSubset(x, 1, { shape: 'star' as never })).toThrowError(/options\.shape must be one of 'circle', 'square'/);
    expect(() => damageSubset(x, 1, { radius: [3, 1] })).toThrowError(/options\.radius must have min <= max/);
    expect(() => damageSubset(x, 1, { shape: 'square', size: 5 })).toThrowError(/options\.size must be an integer in \[0, 4\]/);
    x.dispose();
  });
});
