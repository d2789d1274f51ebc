export { adapter, adapterParameterCount, adapterSites, bottleneckSize, ADAPTER_DEFAULTS, ADAPTER_VERSION } from './adapter';
export type { AdapterOptions, Placement, NonLinearity } from './adapter';
export { adapterMethod } from './method';
export { ADAPTER_OPTIONS } from './options';
