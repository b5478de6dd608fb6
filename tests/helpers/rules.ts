/**
 * Test helper: a custom update rule (one 1x1 convolution, seeded weights), for the tests of
 * what the library does with rules it does not know.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UpdateRule } from '../../src/layers/UpdateRule.js';

export class OneByOne extends UpdateRule {
  static override className = 'test.OneByOne';
  private kernel!: tf.Variable;
  override build(): void {
    this.kernel = this.addWeight('kernel', [1, 1, this.channels, this.channels], 'float32', { apply: (s: number[]) => tf.randomNormal(s, 0, 0.1, 'float32', 5) } as never).read() as tf.Variable;
  }
  override delta(state: tf.Tensor4D): tf.Tensor4D {
    return tf.conv2d(state, this.kernel as tf.Tensor4D, 1, 'same');
  }
}
