// Every test runs on the wasm backend, the project's CPU default.
import { selectBackend } from '@deltatune/backends';

// Test files run side by side, one per core, and so do the CLI processes they start: one thread
// each (DELTATUNE_THREADS, the CLI's default for --threads) keeps them from contending. The
// threaded backend has its own test (packages/backends/test/wasm-threads.test.ts).
process.env.DELTATUNE_THREADS ??= '1';

await selectBackend('wasm');
