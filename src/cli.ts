#!/usr/bin/env node
/**
 * The `vnca` command: the everyday jobs without writing a script.
 *
 * ```sh
 * npx vnca sample --model mnist-small --out samples.png     # new digits from a shipped model
 * npx vnca train --data mnist --out my-model                 # progress bar, checkpoints, --resume
 * npx vnca evaluate --model my-model/checkpoint --k 128      # IWAE bound in nats
 * npx vnca regrow --model mnist-small --out regrowth.gif     # damage grown digits, watch them regrow
 * ```
 *
 * `--model` takes a shipped model's name or a folder (model.json + weights.bin). Every
 * command takes `--backend wasm|cpu` (wasm by default; it needs @tensorflow/tfjs-backend-wasm,
 * cpu needs @tensorflow/tfjs-backend-cpu).
 */
import { program } from './cli/program.js';

program().parseAsync(process.argv).catch((e: unknown) => {
  // Errors we expect (a missing package, a bad flag value, no such model) in one line; the
  // rest with their stack.
  const err = e as Error;
  const known = ['MissingPeerDependencyError', 'ModelNotFoundError', 'VncaError', 'RangeError'].includes(err?.name);
  console.error(`error: ${known ? err.message : (err?.stack ?? String(e))}`);
  process.exit(1);
});
