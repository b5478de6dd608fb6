/**
 * commander parsers for numeric flags, shared by the `vnca` command and the examples: each
 * rejects a bad value with a message that names what was expected and what came.
 */
import { InvalidArgumentError } from 'commander';

/** commander parser: an integer >= 0 (`--steps 100`). */
export function int(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer >= 0, got '${value}'.`);
  return n;
}

/** commander parser: an integer >= 1. */
export function positiveInt(value: string): number {
  const n = int(value);
  if (n < 1) throw new InvalidArgumentError(`expected an integer >= 1, got '${value}'.`);
  return n;
}

/** commander parser: a finite number (`--lr 3e-4`). */
export function float(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${value}'.`);
  return n;
}

/** commander parser: a comma-separated list of positive integers (`--encoder-channels 8,16,32,64,128`). */
export function intList(value: string): number[] {
  return value.split(',').map((v) => positiveInt(v.trim()));
}
