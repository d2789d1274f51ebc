// Every test runs on the wasm backend, the project's CPU default.
import { selectBackend } from '@deltatune/backends';

await selectBackend('wasm');
