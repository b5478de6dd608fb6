/**
 * `--model` of the `vnca` command and the examples: a shipped model by name
 * (`mnist-small`, `mnist-regen`: see `PRETRAINED_MODELS`) or a folder holding
 * `model.json` + `weights.bin` (a checkpoint of `vnca train`, a `VNCA.save` output).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PRETRAINED_NAMES, VNCA, type PretrainedName, type UpdateRuleClass } from '../index.js';
import { fileSystem, pretrained, pretrainedPath } from '../node.js';

/** The model the command line uses when none is named. */
export const DEFAULT_MODEL: PretrainedName = 'mnist-small';

/**
 * The model `vnca regrow` uses when none is named: `mnist-regen` (trained with damage, it
 * heals) when the package ships it, else {@link DEFAULT_MODEL}.
 */
export function defaultRegrowModel(): PretrainedName {
  try {
    pretrainedPath('mnist-regen');
    return 'mnist-regen';
  } catch {
    return DEFAULT_MODEL;
  }
}

/** Whether `--model` names a shipped model rather than a folder. */
export function isPretrainedName(value: string): value is PretrainedName {
  return (PRETRAINED_NAMES as readonly string[]).includes(value);
}

/** Help text of `--model`. */
export const MODEL_HELP = `a shipped model (${PRETRAINED_NAMES.join(', ')}) or a folder with model.json + weights.bin`;

/** Thrown by {@link loadModel} when `--model` is neither a shipped model nor a model folder. */
export class ModelNotFoundError extends Error {
  constructor(model: string) {
    super(`no model '${model}': expected one of the shipped models (${PRETRAINED_NAMES.join(', ')}) `
      + `or a folder holding model.json + weights.bin, but ${join(model, 'model.json')} does not exist. `
      + 'Train one with `vnca train --out <dir>` (it writes <dir>/checkpoint/).');
    this.name = 'ModelNotFoundError';
  }
}

/**
 * Loads a VNCA from a shipped model's name or a folder.
 *
 * @param model A name of `PRETRAINED_MODELS`, or a folder path. A folder wins over a name
 *   when both exist (`./mnist-small` is always the folder).
 * @param updateRules Custom update-rule classes the saved model uses.
 * @throws ModelNotFoundError when it is neither.
 */
export async function loadModel(model: string, updateRules: UpdateRuleClass[] = []): Promise<VNCA> {
  if (existsSync(join(model, 'model.json'))) return VNCA.load(fileSystem(model), { updateRules });
  if (isPretrainedName(model)) return VNCA.load(pretrained(model), { updateRules });
  throw new ModelNotFoundError(model);
}
