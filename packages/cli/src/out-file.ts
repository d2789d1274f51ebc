import { existsSync, readFileSync, statSync } from 'node:fs';
import { DeltaTuneError } from '@deltatune/core';

/**
 * A single output file (`--out out.json`) may be replaced when this command wrote it (its JSON has
 * the command's shape) or with `--overwrite`; any other file there is the user's and is kept.
 */
export function checkOutFile(path: string, overwrite: boolean, command: string, isOurs: (json: Record<string, unknown>) => boolean): void {
  if (!existsSync(path) || overwrite) return;
  if (statSync(path).isDirectory())
    throw new DeltaTuneError(`--out ${path} is a folder`, 'name a file for the outputs, e.g. --out out.json');
  let ours: boolean;
  try {
    const json = JSON.parse(readFileSync(path, 'utf8'));
    ours = !!json && typeof json === 'object' && !Array.isArray(json) && isOurs(json);
  } catch {
    ours = false;
  }
  if (!ours)
    throw new DeltaTuneError(`--out ${path} exists and was not written by ${command}`, 'name a new file, or add --overwrite to replace it');
}
