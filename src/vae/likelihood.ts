/**
 * The likelihoods p(x | cells) a {@link VNCA} can read from its final cell states, one object
 * each: how many image channels it models, how many cell channels it reads, how images enter
 * the model, log p(x | state) and the image a state shows. The math lives in likelihoods.ts.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { bernoulliLogProb, discretizedMixLogisticLogProb, discretizedMixLogisticMean } from './likelihoods.js';

/** One likelihood of the VNCA's decoder. `nMix` is the config's mixture size. @internal */
export interface Likelihood {
  /** Image channels it models. */
  readonly imageChannels: number;
  /** Cell channels it reads, from channel 0 on. */
  stateChannels(nMix: number): number;
  /** Images in [0, 1] as the encoder and the likelihood see them. */
  modelInput(x: tf.Tensor4D): tf.Tensor4D;
  /** log p(x | state) per image `[batch]`. */
  logProb(state: tf.Tensor4D, x: tf.Tensor4D, nMix: number): tf.Tensor1D;
  /** The likelihood's mean as images in [0, 1], `[batch, h, w, imageChannels]`. */
  mean(state: tf.Tensor4D, nMix: number): tf.Tensor4D;
}

/** The first `n` channels of `state`. */
const firstChannels = (state: tf.Tensor4D, n: number) => tf.slice(state, [0, 0, 0, 0], [-1, -1, -1, n]) as tf.Tensor4D;

/** Binary images: a Bernoulli whose logit is channel 0. */
const BERNOULLI: Likelihood = {
  imageChannels: 1,
  stateChannels: () => 1,
  modelInput: (x) => x,
  logProb: (state, x) => tf.tidy(() => bernoulliLogProb(firstChannels(state, 1), x)),
  mean: (state) => tf.tidy(() => tf.sigmoid(firstChannels(state, 1)) as tf.Tensor4D),
};

/** RGB images: a discretised mixture of logistics (PixelCNN++), 10 channels per component, on [-1, 1]. */
const DMOL: Likelihood = {
  imageChannels: 3,
  stateChannels: (nMix) => 10 * nMix,
  // Colour images are mapped to [-1, 1] as PixelCNN++ does.
  modelInput: (x) => tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D,
  logProb: (state, x, nMix) => tf.tidy(() => discretizedMixLogisticLogProb(firstChannels(state, 10 * nMix), DMOL.modelInput(x))),
  mean: (state, nMix) => tf.tidy(() => {
    const mean = discretizedMixLogisticMean(firstChannels(state, 10 * nMix));
    return tf.clipByValue(tf.div(tf.add(mean, 1), 2), 0, 1) as tf.Tensor4D;
  }),
};

/** Every likelihood, by its `likelihood` option. @internal */
export const LIKELIHOODS: Readonly<Record<'bernoulli' | 'dmol', Likelihood>> = { bernoulli: BERNOULLI, dmol: DMOL };
