/**
 * `vnca/node`: what needs Node's file system.
 *
 * - Weights on disk: {@link fileSystem} (a tfjs IO handler for `VNCA.save` / `VNCA.load`),
 *   {@link writeFileAtomic}
 * - Pictures: {@link savePngGrid}, {@link saveGif}, {@link imageGrid}, {@link encodePng}, {@link encodeGif}
 * - Data: the bundled `mnist` digits, IDX files (MNIST, Fashion-MNIST), binarised-MNIST `.amat`
 *   files, folders of PNG images
 * - Both cores: {@link ParallelVNCA} (data-parallel training and sampling over `worker_threads`)
 * @module
 */
export { fileSystem, writeFileAtomic, type FileSystemOptions } from './node/fileSystem.js';
export { imageGrid, encodePng, savePngGrid, encodeGif, saveGif, type GridOptions, type RgbPicture } from './node/images.js';
export * from './node/data.js';
export { ParallelVNCA, type ParallelOptions } from './node/parallel.js';
export { pretrained, pretrainedPath } from './pretrained/node.js';
