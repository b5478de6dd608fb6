import * as tf from '@tensorflow/tfjs-core';

/**
 * The error every `vnca` function throws for bad input. Its message names the
 * function, the argument, what was expected and what came, e.g.
 * `Error in doubleCells: state must be rank 4 [batch, height, width, channels], but got rank 3.`
 *
 * @category Errors
 */
export class VncaError extends Error {
  /** The public function or method that rejected its input. */
  readonly fn: string;
  /** The argument that was wrong. */
  readonly arg: string;

  constructor(fn: string, arg: string, message: string) {
    super(`Error in ${fn}: ${arg} ${message}`);
    this.name = 'VncaError';
    this.fn = fn;
    this.arg = arg;
  }
}

/** Renders a value for an error message without dumping large data. @internal */
export function describe(value: unknown): string {
  if (value instanceof tf.Tensor) return `a ${value.dtype} tensor of shape [${value.shape.join(', ')}]`;
  if (Array.isArray(value)) return value.length > 8 ? `an array of length ${value.length}` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  return Object.prototype.toString.call(value);
}

/** Throws unless `x` is a tf.Tensor. @internal */
export function assertTensor(x: unknown, fn: string, arg: string): asserts x is tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new VncaError(fn, arg, `must be a tf.Tensor, but got ${describe(x)}.`);
  if (x.isDisposed) throw new VncaError(fn, arg, 'must be a live tensor, but it has been disposed.');
}

/**
 * Throws unless `x` is a tensor of the given rank. `layout` is printed in the message,
 * e.g. `[batch, height, width, channels]`. @internal
 */
export function assertRank(x: unknown, rank: number, fn: string, arg: string, layout = ''): asserts x is tf.Tensor {
  assertTensor(x, fn, arg);
  if (x.rank !== rank) {
    throw new VncaError(fn, arg, `must be rank ${rank}${layout ? ` ${layout}` : ''}, but got rank ${x.rank} (shape [${x.shape.join(', ')}]).`);
  }
}

/** Throws unless `x` is a float32 rank-4 NHWC tensor. @internal */
export function assertState(x: unknown, fn: string, arg = 'state'): asserts x is tf.Tensor4D {
  assertRank(x, 4, fn, arg, '[batch, height, width, channels]');
  if (x.dtype !== 'float32') throw new VncaError(fn, arg, `must be float32, but got ${x.dtype}.`);
}

/** Throws unless `v` is an integer in [min, max]. @internal */
export function assertInt(v: unknown, fn: string, arg: string, min = -Infinity, max = Infinity): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = min === -Infinity && max === Infinity ? ''
      : max === Infinity ? ` >= ${min}` : min === -Infinity ? ` <= ${max}` : ` in [${min}, ${max}]`;
    throw new VncaError(fn, arg, `must be an integer${range}, but got ${describe(v)}.`);
  }
}

/** Throws unless `v` is a finite number in [min, max] (open ends with `open`). @internal */
export function assertNumber(
  v: unknown, fn: string, arg: string, min = -Infinity, max = Infinity, open: { min?: boolean; max?: boolean } = {},
): asserts v is number {
  const ok = typeof v === 'number' && Number.isFinite(v)
    && (open.min ? v > min : v >= min) && (open.max ? v < max : v <= max);
  if (!ok) {
    const lo = min === -Infinity ? '' : `${open.min ? '>' : '>='} ${min}`;
    const hi = max === Infinity ? '' : `${open.max ? '<' : '<='} ${max}`;
    const range = [lo, hi].filter(Boolean).join(' and ');
    throw new VncaError(fn, arg, `must be a finite number${range ? ` ${range}` : ''}, but got ${describe(v)}.`);
  }
}

/** Throws unless `v` is one of `choices`. @internal */
export function assertOneOf<T extends string>(v: unknown, choices: readonly T[], fn: string, arg: string): asserts v is T {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw new VncaError(fn, arg, `must be one of ${choices.map((c) => `'${c}'`).join(', ')}, but got ${describe(v)}.`);
  }
}
