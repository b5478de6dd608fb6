/**
 * The seeded batch sampler of {@link VNCA.fit}, and its position as a checkpoint saves it,
 * so a resumed run draws the batches the uninterrupted run would have drawn.
 * @module
 */
import { resumableRng, type ResumableRng } from '../core/random.js';

/** How {@link VNCA.fit} draws batches. @internal */
export type ShuffleMode = 'epoch' | 'replacement';

/**
 * A batch sampler's settings and position, plain numbers (saved in a checkpoint's JSON).
 * `rngState` is the generator's state before the current epoch's shuffle (`'epoch'`) or
 * now (`'replacement'`); `at` is the position in the current epoch's order (`n` before the
 * first batch). @internal
 */
export interface BatchSamplerState {
  n: number;
  batchSize: number;
  shuffle: ShuffleMode;
  seed: number;
  /** Batches drawn so far. */
  batches: number;
  rngState: number;
  at: number;
}

/**
 * Seeded batch indices: `'epoch'` walks through a fresh shuffle of the `n` images each epoch
 * (a last part smaller than `batchSize` is left out, as PyTorch's `drop_last`),
 * `'replacement'` draws each index uniformly. Its {@link BatchSampler.state} rebuilds it
 * ({@link BatchSampler.fromState}) at the same position, in O(n). @internal
 */
export class BatchSampler {
  private rng: ResumableRng;
  private order: number[] = [];
  private at: number;
  private epochState: number;
  private batches = 0;

  /** Batches drawn so far. */
  get drawn(): number {
    return this.batches;
  }

  constructor(readonly n: number, readonly batchSize: number, readonly shuffle: ShuffleMode, readonly seed: number) {
    this.rng = resumableRng(seed);
    this.at = n;
    this.epochState = this.rng.state();
  }

  /** Whether this sampler draws for these settings (then a new fit continues it). */
  matches(n: number, batchSize: number, shuffle: ShuffleMode, seed: number): boolean {
    return this.n === n && this.batchSize === batchSize && this.shuffle === shuffle && this.seed === seed;
  }

  /** The indices of the next batch. */
  next(): number[] {
    this.batches++;
    const { n, batchSize } = this;
    if (this.shuffle === 'replacement') return Array.from({ length: batchSize }, () => Math.floor(this.rng.next() * n));
    if (this.at + batchSize > n) this.newEpoch();
    this.at += batchSize;
    return this.order.slice(this.at - batchSize, this.at);
  }

  private newEpoch(): void {
    const { n } = this;
    this.epochState = this.rng.state();
    this.order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.rng.next() * (i + 1));
      [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
    }
    this.at = 0;
  }

  /** Settings and position, plain numbers. */
  state(): BatchSamplerState {
    const { n, batchSize, shuffle, seed, batches } = this;
    const rngState = shuffle === 'epoch' ? this.epochState : this.rng.state();
    return { n, batchSize, shuffle, seed, batches, rngState, at: this.at };
  }

  /** The sampler a {@link BatchSampler.state} describes, at the same position (state checked by the caller). */
  static fromState(s: BatchSamplerState): BatchSampler {
    const b = new BatchSampler(s.n, s.batchSize, s.shuffle, s.seed);
    b.batches = s.batches;
    b.rng = resumableRng(s.rngState);
    if (s.shuffle === 'epoch' && s.batches > 0) {
      // Shuffling again from the epoch's start state gives the same order and leaves the generator where it was.
      b.newEpoch();
      b.at = s.at;
    }
    b.epochState = s.rngState;
    return b;
  }
}
