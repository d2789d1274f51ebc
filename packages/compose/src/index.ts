export { Composition, compose } from './composition';
export type { Member } from './composition';
export { combineLoras } from './combine-lora';
export type { LoraCombination } from './combine-lora';
export { manifestOf, parseManifest } from './manifest';
export type { CompositionManifest } from './manifest';
export { truncatedSvd, jacobiEigen } from './svd';
