export { bitfit, bitfitParameterCount, bitfitSites, BITFIT_DEFAULTS, BITFIT_OPTIONS, BITFIT_VERSION } from './bitfit';
export type { BitFitOptions } from './bitfit';
export { bitfitMethod } from './method';
