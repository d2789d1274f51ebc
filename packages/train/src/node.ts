// `@deltatune/train/node`: what needs Node (the disk, npm packages read with require). The main
// entry runs anywhere, a browser page included; these build on it.
export { train } from './node/train';
export { checkpointFolder } from './node/checkpoint-folder';
export { saveClassifier, loadClassifier } from './node/classifier-folder';
export { loadDataset, BUILTIN_DATASETS } from './node/datasets/registry';
export { loadFileDataset, parseCsv } from './node/datasets/files';
export { loadSftFile } from './node/datasets/sft-file';
export type { FileColumns } from './node/datasets/files';
export { loadSpam, emailText } from './node/datasets/spam';
export { loadImdb } from './node/datasets/imdb';
export { loadSotuParty, passages } from './node/datasets/sotu';
