import { DeltaTuneError } from './errors';
import type { DeltaMethod } from './method';
import { satisfies } from './semver';
import { closestNames } from './targeting';
import { CORE_VERSION } from './version';

/**
 * One method registry per process, kept on the global object under a `Symbol.for` key (as tfjs
 * keeps its kernel registry), so two installed copies of core still share it.
 */
const KEY = Symbol.for('@deltatune/core/method-registry');
type Registry = Map<string, DeltaMethod<any>>;

function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  return (g[KEY] ??= new Map());
}

/** Registers a method by name. Re-registering the same name and version is a no-op (duplicate installs). */
export function registerMethod(method: DeltaMethod<any>): void {
  checkCompatible(method.name, method.coreRange, method.packageName);
  const existing = registry().get(method.name);
  if (existing && existing.version !== method.version) {
    throw new DeltaTuneError(
      `method "${method.name}" is registered twice, by ${existing.packageName}@${existing.version} and ${method.packageName}@${method.version}`,
      'install one version of the method package (npm ls ' + method.packageName + ')',
    );
  }
  registry().set(method.name, method);
}

export function unregisterMethod(name: string): void {
  registry().delete(name);
}

export function getMethod(name: string, hint?: string): DeltaMethod<any> {
  const method = registry().get(name);
  if (method) return method;
  const known = [...registry().keys()];
  const near = closestNames(name, known, 3);
  throw new DeltaTuneError(
    `no delta method named "${name}" is registered` +
      (known.length ? ` (registered: ${known.join(', ')}; closest: ${near.join(', ')})` : ''),
    hint ??
      (known.length
        ? `use a registered method (${known.join(', ')}), or load a third-party one with --plugin <package or folder>`
        : 'register a method first (registerMethod(loraMethod) from @deltatune/lora), or pass --plugin <package or folder>'),
  );
}

/** Finds a method by PEFT's `peft_type` (e.g. LORA), for loading PEFT folders. */
export function findMethodByPeftType(peftType: string): DeltaMethod<any> | undefined {
  for (const m of registry().values()) if (m.peftType === peftType) return m;
  return undefined;
}

export function listMethods(): DeltaMethod<any>[] {
  return [...registry().values()];
}

export function checkCompatible(name: string, coreRange: string, packageName = name): void {
  if (!satisfies(CORE_VERSION, coreRange)) {
    throw new DeltaTuneError(
      `method "${name}" (${packageName}) was built for @deltatune/core ${coreRange}, but core ${CORE_VERSION} is installed`,
      `install a version of ${packageName} built for core ${CORE_VERSION}, or a core in ${coreRange}`,
    );
  }
}
