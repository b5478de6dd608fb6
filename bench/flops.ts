/**
 * Analytic multiply-accumulate (MAC) counts of a VNCA, from its configuration alone.
 *
 * Counting rule (used for every "GFLOP/s" the benchmark prints; 1 MAC = 2 FLOP):
 * - convolutions and dense layers only: `kh * kw * cIn * cOut` MACs per output cell, and
 *   `in * out` per dense output row; biases, activations, residual adds, the update masks,
 *   the 2x2 doublings, the loss and the optimiser are not counted (together well under 1%);
 * - encoder: every conv (first stride 1, then stride 2, output `ceil(size / 2)`), then the
 *   dense layer `f * f * cLast -> 2 * zSize`;
 * - decoder (one rollout of the doubling VNCA): `stepsPerDoubling` steps at each grid size
 *   `s0 * 2^d`, d = 0 .. nDoublings, each step = per cell conv kxk (`k^2 * zSize^2`) +
 *   `nBlocks` residual blocks (`2 * zSize * hidden`) + conv_out (`zSize^2`);
 * - generation (`sample(n)`): n decoder rollouts, nothing else;
 * - a training step: `3 x` (encoder + decoder) for the forward pass and the backward pass
 *   (input gradients and weight gradients each cost one forward's MACs), plus one more
 *   decoder forward when gradient checkpointing recomputes every step in the backward
 *   pass. The encoder's first conv needs no input gradient; counting it anyway changes
 *   the total by < 0.01%. PyTorch (no checkpointing) executes the `3 x` count.
 */

/** The parts of a VNCA configuration the count depends on (the names of `VNCAConfig`). */
export interface MacConfig {
  zSize: number;
  hidden: number;
  nBlocks: number;
  stepsPerDoubling: number;
  nDoublings: number;
  imageSize: number;
  imageChannels: number;
  encoderChannels: number[];
  /** Kernel size of the update rule's first conv (the paper: 3). */
  ruleKernel?: number;
  /** Kernel size of the encoder's convs (the paper: 5). */
  encoderKernel?: number;
}

/** MACs of one update-rule application, per cell. */
export function ruleMacsPerCell(c: MacConfig): number {
  const k = c.ruleKernel ?? 3;
  return k * k * c.zSize * c.zSize + c.nBlocks * 2 * c.zSize * c.hidden + c.zSize * c.zSize;
}

/** Cell updates of one rollout (summed over steps and grid sizes), per sample. */
export function cellSteps(c: MacConfig): number {
  const s0 = c.imageSize / 2 ** c.nDoublings;
  let cells = 0;
  for (let d = 0; d <= c.nDoublings; d++) cells += (s0 * 2 ** d) ** 2;
  return c.stepsPerDoubling * cells;
}

/** Decoder MACs of one rollout, per sample. */
export function decoderMacs(c: MacConfig): number {
  return cellSteps(c) * ruleMacsPerCell(c);
}

/** Encoder MACs, per sample. */
export function encoderMacs(c: MacConfig): number {
  const k = c.encoderKernel ?? 5;
  let size = c.imageSize;
  let cIn = c.imageChannels;
  let macs = 0;
  c.encoderChannels.forEach((cOut, i) => {
    if (i > 0) size = Math.ceil(size / 2);
    macs += size * size * k * k * cIn * cOut;
    cIn = cOut;
  });
  return macs + size * size * cIn * 2 * c.zSize;
}

/** MACs of generating `n` samples. */
export function generationMacs(c: MacConfig, n: number): number {
  return n * decoderMacs(c);
}

/**
 * MACs executed by one training step on a batch of `n`: `3 x` (encoder + decoder), plus one
 * decoder forward when `recompute` (gradient checkpointing).
 */
export function trainingMacs(c: MacConfig, n: number, recompute: boolean): number {
  return n * (3 * (encoderMacs(c) + decoderMacs(c)) + (recompute ? decoderMacs(c) : 0));
}

/** GFLOP/s for `macs` multiply-accumulates done in `ms` milliseconds. */
export function gflops(macs: number, ms: number): number {
  return (2 * macs) / (ms * 1e6);
}
