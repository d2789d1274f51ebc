import { BACKENDS } from '@deltatune/backends';
import { flag } from './command-line/flag-schema';

/** Flags every command takes. */
export const COMMON_FLAGS = {
  backend: flag({
    type: { choices: BACKENDS },
    help: 'where tensors compute; auto tries tensorflow, webgpu, wasm, then cpu',
    placeholder: 'NAME',
    default: 'auto',
  }),
  threads: flag({
    type: 'positiveInteger',
    help: "threads for the wasm backend's matrix products (results are the same on any count)",
    placeholder: 'N',
    defaultText: 'every core, up to 8; DELTATUNE_THREADS',
  }),
  plugin: flag({
    type: 'text',
    accepts: 'a package name or a path',
    help: 'a third-party method package to register (its methods then work as --method)',
    placeholder: 'PKG',
    repeatable: true,
  }),
  json: flag({ type: 'switch', help: 'print the result, or the error as {error, fix}, as JSON on stdout' }),
  help: flag({ type: 'switch', help: 'show this help', short: 'h' }),
} as const;

export type CommonFlags = typeof COMMON_FLAGS;
