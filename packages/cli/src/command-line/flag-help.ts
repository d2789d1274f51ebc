import { columns } from './columns';
import { flagName, type FlagSchema, type FlagSpec } from './flag-schema';
import { isNumberKind, NUMBER_KINDS } from './number-kinds';

/** What a flag's value must be, in the words its error uses. */
export function flagAccepts(spec: FlagSpec): string {
  if (spec.type === 'switch') return 'no value';
  if (spec.type === 'text') return spec.accepts ?? 'text';
  if (isNumberKind(spec.type)) return NUMBER_KINDS[spec.type].what;
  return `one of ${spec.type.choices.join(', ')}`;
}

/** One line per flag: `--name VALUE`, what it accepts, what it does and its default. */
export function flagLines(schema: FlagSchema): string[] {
  const rows = Object.entries(schema)
    .filter(([, spec]) => !spec.hidden)
    .map(([name, spec]) => {
      const fallback = spec.defaultText ?? spec.default;
      return [
        `${flagName(name)}${spec.type === 'switch' ? '' : ` ${spec.placeholder ?? 'VALUE'}`}${spec.short ? `, -${spec.short}` : ''}`,
        flagAccepts(spec) + (spec.repeatable ? ' (repeatable)' : ''),
        withDefault(spec.help, fallback === undefined ? undefined : String(fallback)),
      ];
    });
  return columns(rows, '  ');
}

export const withDefault = (help: string, fallback: string | undefined) =>
  fallback === undefined ? help : `${help} (default ${fallback})`;
