import { selectBackend, type BackendChoice, type Backbone } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { loadBackbone, loadTokenizer } from '@deltatune/models/node';
import type { Flags } from './args';
import { prepareMethods } from './methods';

/** What every command starts with: a backend, the registered methods (plugins too). */
export async function prepare(flags: Flags): Promise<{ backend: string }> {
  const backend = await selectBackend((flags.string('backend', 'auto') as BackendChoice));
  await prepareMethods(flags.all('plugin'));
  return { backend };
}

export function modelAndTokenizer(model: string, needTokenizer: boolean): { backbone: Backbone; tokenizer?: TextTokenizer } {
  const backbone = loadBackbone(model);
  return { backbone, tokenizer: needTokenizer ? loadTokenizer(model) : undefined };
}

/** Prints a result: JSON on stdout for `--json`, else the human text. */
export function output(json: boolean, data: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : text() + '\n');
}
