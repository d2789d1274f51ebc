// Training differentiates through tfjs ops: register tfjs's gradients (tfjs-core alone registers
// none) and deltatune's fused kernels, once, on import.
import './gradients';
import '@deltatune/kernels';

export { selectBackend, BACKENDS, isMissingModule } from './backend';
export type { BackendChoice, PackageLoader } from './backend';
export { installWasmMatMul } from './wasm-matmul';
export { installWasmUnsortedSegmentSum } from './wasm-segment-sum';
