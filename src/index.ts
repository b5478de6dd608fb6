/**
 * vnca — neural cellular automata on TensorFlow.js, with the Variational Neural
 * Cellular Automaton (Palm et al., ICLR 2022) as its flagship.
 *
 * Public groups:
 * - Errors: {@link VncaError}
 * - Core primitives (src/core): perception kernels and `perceive`, stochastic cell
 *   mask and masked update, `doubleCells`, `damage`, `aliveMask`, `SamplePool`, a seeded RNG
 * - Update rules (src/layers): `UpdateRule`, `ResidualUpdateRule`, `PerceptionUpdateRule`
 * - Ops (src/ops): `fastConv2d`
 * - Backends (src/backend/wasm): `enableWasmTraining`
 * - Growth (src/growth): `grow`, `runSteps`, `step`
 * - VAE (src/vae): distributions, likelihoods, `elbo`, `iwae`, `Encoder`, `VNCA`,
 *   `NON_DOUBLING_MNIST`
 * - More automata (src/growing): `GrowingNCA`, the classic growing NCA
 * - Weights: safetensors reading and writing (`VNCA.fromPyTorch` uses them)
 *
 * Tensors are NHWC: `[batch, height, width, channels]`.
 * @module
 */
export { VncaError } from './core/errors.js';
export * from './core/index.js';
export { mulberry32, shuffleInPlace, type Rng } from './core/random.js';
export {
  SamplePool, damageSubset, type SamplePoolOptions, type PoolSample, type DamageSubsetOptions,
} from './core/SamplePool.js';
export * from './layers/index.js';
export { enableWasmTraining, isWasmTrainingEnabled } from './backend/wasm/register.js';
export { fastConv2d, type FastConv2dOptions, type FastConv2dActivation } from './ops/conv.js';
export {
  grow, runSteps, step,
  type Rule, type RuleLayer, type StepOptions, type RunOptions, type GrowOptions, type GrowResult,
} from './growth/grow.js';
export { DiagonalGaussian, standardNormalLogProb, sampleStandardNormal } from './vae/distributions.js';
export {
  bernoulliLogProb, bernoulliMean, bernoulliSample, discretizedMixLogisticLogProb,
  discretizedMixLogisticSample, discretizedMixLogisticMean, nMixFromChannels,
} from './vae/likelihoods.js';
export { elbo, elboLoss, iwae, natsToBitsPerDim, bitsPerDimToNats, type ElboResult, type ElboOptions } from './vae/losses.js';
export { Encoder, registerEncoder, type EncoderOptions } from './vae/Encoder.js';
export {
  VNCA, NON_DOUBLING_MNIST, type VNCAOptions, type VNCAConfig, type TrainStepResult, type FitProgress, type FitOptions,
  type EvaluateResult, type UpdateRuleClass, type GradientOptions, type Gradients, type SaveOptions,
} from './vae/VNCA.js';
export type { EvaluateOptions } from './vae/evaluate.js';
export type { InpaintOptions } from './vae/inpainting.js';
export type { PyTorchOptions } from './vae/persistence.js';
export { clipByGlobalNorm, globalNorm } from './vae/clip.js';
export { parseSafetensors, writeSafetensors, type Safetensors, type SafetensorsEntry } from './vae/safetensors.js';
export type { PyTorchVNCASizes } from './vae/pytorch.js';
export * from './growing/index.js';
export {
  measureRegeneration, measureInpainting,
  type RegenerationOptions, type RegenerationResult, type RegrowthScore, type InpaintingResult,
} from './vae/regeneration.js';
export {
  PRETRAINED_MODELS, PRETRAINED_NAMES, pretrainedUrl, type PretrainedInfo, type PretrainedName,
} from './pretrained/registry.js';
export {
  enableRelaxedSimdKernels, disableRelaxedSimdKernels, isRelaxedSimdEnabled, isRelaxedSimdSupported,
} from './backend/relaxed/relaxedMatMul.js';
