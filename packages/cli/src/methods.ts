import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DeltaTuneError, registerMethod, type DeltaMethod } from '@deltatune/core';
import { adapterMethod } from '@deltatune/adapter';
import { bitfitMethod } from '@deltatune/bitfit';
import { doraMethod, loraMethod, veraMethod } from '@deltatune/lora';
import { lohaMethod, lokrMethod } from '@deltatune/lycoris';
import { prefixMethod, promptMethod } from '@deltatune/prefix';

/** Methods shipped with the CLI. Others come from `--plugin`. */
export const BUILTIN_METHODS: readonly DeltaMethod<any>[] = [
  loraMethod,
  doraMethod,
  veraMethod,
  lohaMethod,
  lokrMethod,
  adapterMethod,
  bitfitMethod,
  prefixMethod,
  promptMethod,
];

export function registerBuiltinMethods(): void {
  for (const m of BUILTIN_METHODS) registerMethod(m);
}

/**
 * Loads a third-party method package (a package name or a path) and registers what it exports:
 * a `methods` array, a `method`, or a default export, each a `DeltaMethod`.
 */
export async function loadPlugin(specifier: string): Promise<DeltaMethod<any>[]> {
  const target = specifier.startsWith('.') || isAbsolute(specifier) ? pathToFileURL(entryOf(resolve(specifier))).href : specifier;
  let mod: Record<string, unknown>;
  try {
    mod = await import(target);
  } catch (e) {
    throw new DeltaTuneError(
      `could not load plugin "${specifier}": ${(e as Error).message.split('\n')[0]}`,
      'pass an installed package name or a path to a built plugin package',
    );
  }
  const candidates = [mod.methods, mod.method, mod.default, (mod.default as Record<string, unknown> | undefined)?.methods].flat();
  const objects = candidates.filter((m): m is Record<string, unknown> => !!m && typeof m === 'object' && !Array.isArray(m));
  if (objects.length === 0) {
    throw new DeltaTuneError(
      `plugin "${specifier}" exports no delta method`,
      'export `methods: DeltaMethod[]` (or `method`) from the package entry; see docs/writing-a-method.md',
    );
  }
  for (const m of objects) {
    const missing = [
      ...(['name', 'version', 'coreRange', 'packageName', 'description'] as const).filter((k) => typeof m[k] !== 'string'),
      ...(['create', 'fromConfig'] as const).filter((k) => typeof m[k] !== 'function'),
      ...(typeof (m.options as { parse?: unknown } | undefined)?.parse === 'function' ? [] : ['options (an option schema: defineOptions)']),
    ];
    if (missing.length) {
      throw new DeltaTuneError(
        `plugin "${specifier}" exports a method${typeof m.name === 'string' ? ` "${m.name}"` : ''} without ${missing.join(', ')}`,
        'a DeltaMethod has name, version, coreRange, packageName, description (strings), ' +
          'options (defineOptions from @deltatune/core) and create, fromConfig (functions); see docs/writing-a-method.md',
      );
    }
  }
  const methods = objects as unknown as DeltaMethod<any>[];
  for (const m of methods) registerMethod(m);
  return methods;
}

/** A path may name a package folder: use its ESM entry (exports > module > main), as a package import would. */
function entryOf(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) return path;
  const manifest = join(path, 'package.json');
  if (!existsSync(manifest))
    throw new DeltaTuneError(
      `plugin folder ${path} has no package.json`,
      'point --plugin at the plugin package folder or its built entry file',
    );
  let pkg: Record<string, any>;
  try {
    pkg = JSON.parse(readFileSync(manifest, 'utf8'));
  } catch (e) {
    throw new DeltaTuneError(
      `plugin ${manifest} is not valid JSON (${(e as Error).message.split('\n')[0]})`,
      'fix the package.json of the plugin',
    );
  }
  const dot = pkg.exports?.['.'];
  const entry =
    (typeof dot === 'string' ? dot : (dot?.import?.default ?? dot?.import ?? dot?.default)) ?? pkg.module ?? pkg.main ?? 'index.js';
  const file = join(path, entry);
  if (!existsSync(file))
    throw new DeltaTuneError(`plugin entry ${file} does not exist`, `build the plugin first (npm run build in ${path})`);
  return file;
}

export async function prepareMethods(plugins: readonly string[]): Promise<void> {
  registerBuiltinMethods();
  for (const p of plugins) await loadPlugin(p);
}
