// Node-only parts of backend selection (never in a page's bundle): the wasm backend on several threads.
export { useWasmThreads, wasmThreads } from './node/wasm-threads';
