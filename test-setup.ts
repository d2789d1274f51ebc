// Every test runs on the wasm backend, the project's CPU default.
import { selectBackend } from '@deltatune/core';

await selectBackend('wasm');
