import type { DeltaMethod } from '@deltatune/core';
import { columns } from './columns';
import { withDefault } from './flag-help';

/**
 * The registered methods (built-ins and `--plugin`s) with each one's options, from the method's own
 * option schema: the same declaration that parses `--opt key=value` and checks options passed in code.
 */
export function methodLines(methods: readonly DeltaMethod<unknown>[]): string[] {
  return methods.flatMap((m) => {
    const heading = `  ${m.name} (${m.packageName} ${m.version}): ${m.description}`;
    // A plugin built against an older core has an option parser but may not describe its options.
    if (typeof m.options?.describe !== 'function') return [heading, '    (this method does not describe its options)'];
    const rows = m.options.describe().map((o) => [o.key, o.accepts, withDefault(o.help, o.default)]);
    return [heading, ...(rows.length ? columns(rows, '    ') : ['    (no options)'])];
  });
}
