/**
 * Fixed 3x3 perception kernels for neural cellular automata.
 *
 * Each function returns a fresh `number[][]` (row = y, column = x), applied as a
 * cross-correlation (as tfjs convolutions do): the output at cell (y, x) is
 * `sum_{i,j} kernel[i][j] * state[y + i - 1][x + j - 1]`, with zeros outside the grid.
 * @module
 */

/**
 * The identity kernel: a cell sees its own state.
 *
 * @category Perception
 * @returns `[[0, 0, 0], [0, 1, 0], [0, 0, 0]]` (row = y, column = x).
 */
export function identityKernel(): number[][] {
  return [
    [0, 0, 0],
    [0, 1, 0],
    [0, 0, 0],
  ];
}

/**
 * The Sobel filter for the gradient along x (width), divided by 8 as in the Growing
 * NCA reference (Mordvintsev et al., Distill 2020). Positive where the state grows
 * towards larger x.
 *
 * @category Perception
 * @returns `[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8` (row = y, column = x).
 */
export function sobelXKernel(): number[][] {
  return [
    [-1 / 8, 0, 1 / 8],
    [-2 / 8, 0, 2 / 8],
    [-1 / 8, 0, 1 / 8],
  ];
}

/**
 * The Sobel filter for the gradient along y (height), the transpose of
 * {@link sobelXKernel}, divided by 8. Positive where the state grows towards larger y
 * (downwards).
 *
 * @category Perception
 * @returns `[[-1, -2, -1], [0, 0, 0], [1, 2, 1]] / 8` (row = y, column = x).
 */
export function sobelYKernel(): number[][] {
  return [
    [-1 / 8, -2 / 8, -1 / 8],
    [0, 0, 0],
    [1 / 8, 2 / 8, 1 / 8],
  ];
}

/**
 * The standard 5-point discrete Laplacian (4-neighbourhood). Not scaled. A 9-point
 * isotropic variant, `[[1, 2, 1], [2, -12, 2], [1, 2, 1]] / 16`, is another common
 * choice; pass it to `perceive` as a literal if you prefer it.
 *
 * @category Perception
 * @returns `[[0, 1, 0], [1, -4, 1], [0, 1, 0]]` (row = y, column = x).
 */
export function laplacianKernel(): number[][] {
  return [
    [0, 1, 0],
    [1, -4, 1],
    [0, 1, 0],
  ];
}
