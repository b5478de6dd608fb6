/**
 * The commands of `vnca` (src/cli.ts): sample, train, evaluate, regrow. Each is a thin
 * layer of flags over code the examples share (src/cli/*, examples/common.ts), so the
 * command line and the examples do the same thing the same way.
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { int, positiveInt } from './args.js';
import { backendOption, type BackendName } from './backend.js';
import { DEFAULT_MODEL, MODEL_HELP, defaultRegrowModel } from './model.js';
import { trainingOptions } from '../../examples/common.js';

/** The package's version, read from its package.json (dist/ or src/ sit one level below it). */
function version(): string {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    return (JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Flags every model-reading command shares. */
export interface ModelFlags {
  model: string;
  backend: BackendName;
  seed: number;
}

/** Builds the `vnca` program; `parseAsync(argv)` runs it. */
export function program(): Command {
  const root = new Command()
    .name('vnca')
    .description('Variational neural cellular automata on TensorFlow.js: sample, train, evaluate, regrow.')
    .version(version())
    .showHelpAfterError('(run with --help for the flags)');

  backendOption(root.command('sample')
    .description('Draw new images from a model and save them as one PNG grid (and, with --gif, their growth).')
    .option('--model <name|dir>', MODEL_HELP, DEFAULT_MODEL)
    .option('--n <n>', 'number of samples', positiveInt, 16)
    .option('--seed <n>', 'random seed', int, 0)
    .option('--scale <n>', 'pixels per image pixel', positiveInt, 4)
    .option('--out <file.png>', 'PNG grid to write', 'samples.png')
    .option('--gif <file.gif>', 'also write a GIF of the samples growing'))
    .action(async (o) => (await import('./sample.js')).sample(o));

  const train = root.command('train')
    .description('Train a doubling VNCA on MNIST or a folder of 32x32 PNG images, with a progress bar, checkpoints in <out>/checkpoint and --resume.')
    .option('--data <what>', "'mnist' (the bundled digits; needs the mnist package), a folder of 32x32 PNG images (read as grey, the mean of R, G, B), or a binarised-MNIST .amat file", 'mnist');
  // The training flags of examples 02 and 08 (--steps, --batch, model sizes, --lr,
  // --checkpoint-every, --resume, --seed, --workers, --out, --backend).
  trainingOptions(train, { steps: 1000, out: 'vnca-model' });
  train.action(async () => (await import('./train.js')).train(train));

  backendOption(root.command('evaluate')
    .description('IWAE lower bound on log p(x) of held-out MNIST digits (or an .amat file), in nats and bits/dim.')
    .option('--model <name|dir>', MODEL_HELP, DEFAULT_MODEL)
    .option('--data <what>', "'mnist' (held-out split of the bundled digits) or a binarised-MNIST .amat file", 'mnist')
    .option('--k <n>', 'importance samples per image (the paper: 128)', positiveInt, 32)
    .option('--images <n>', 'images to evaluate (the first n)', positiveInt, 16)
    .option('--chunk <n>', 'decodes per batch (memory)', positiveInt, 32)
    .option('--seed <n>', 'seed of the importance samples', int, 0))
    .action(async (o) => { await (await import('./evaluate.js')).evaluate(o); });

  backendOption(root.command('regrow')
    .description('Grow digits, damage a centred region of their cells, let the automaton regrow them; writes a GIF (and a PNG strip with --png).')
    .option('--model <name|dir>', `${MODEL_HELP}; mnist-regen, trained with damage, heals (mnist-small does not)`, defaultRegrowModel())
    .addOption(new Option('--source <what>', 'new samples, or held-out digits grown from their posterior mean').choices(['samples', 'digits']).default('samples'))
    .option('--n <n>', 'number of digits', positiveInt, 4)
    .addOption(new Option('--shape <shape>', 'damaged region, centred').choices(['square', 'circle']).default('square'))
    .option('--size <n>', 'side of the square or diameter of the circle, in cells', positiveInt, 12)
    .option('--steps <n>', "regrowth steps after the damage (default: the model's stepsPerDoubling)", int)
    .option('--seed <n>', 'random seed', int, 0)
    .option('--scale <n>', 'pixels per image pixel', positiveInt, 3)
    .option('--out <file.gif>', 'GIF to write', 'regrowth.gif')
    .option('--png <file.png>', 'also write a PNG strip: grown, damaged, then every step'))
    .action(async (o) => (await import('./regrow-command.js')).regrow(o));

  return root;
}
