import { DeltaTuneError } from './errors';
import type { Site, SiteKind, SiteOfKind } from './sites';

/**
 * A target pattern. A plain string matches a site whose name equals it or ends with `.` + it
 * (PEFT's suffix rule: `query` matches `encoder.layer.0.attention.self.query`); a string with `*`
 * or `?` is a glob over the whole name (`*` stays inside one dotted segment, `**` crosses them);
 * `/.../flags` or a RegExp is a regular expression searched in the name.
 */
export type TargetPattern = string | RegExp;

export interface Targeting {
  readonly targets?: TargetPattern | readonly TargetPattern[];
  readonly exclude?: TargetPattern | readonly TargetPattern[];
  /** Layer indices (`[0, 2]`), or an inclusive range (`{ from: 0, to: 5 }`). Sites outside any layer are kept. */
  readonly layers?: readonly number[] | { readonly from?: number; readonly to?: number };
}

export function compilePattern(pattern: TargetPattern): (name: string) => boolean {
  if (pattern instanceof RegExp) return (name) => new RegExp(pattern.source, pattern.flags.replace('g', '')).test(name);
  const regex = /^\/(.+)\/([a-z]*)$/.exec(pattern);
  if (regex) {
    let re: RegExp;
    try {
      re = new RegExp(regex[1], regex[2].replace('g', ''));
    } catch (e) {
      throw new DeltaTuneError(
        `target ${pattern} is not a valid regular expression (${(e as Error).message.replace(/^Invalid regular expression: /, '')})`,
        'fix the pattern, e.g. targets=/attention\\.self\\.(query|value)$/, or use a suffix such as targets=query',
      );
    }
    return (name) => re.test(name);
  }
  if (/[*?]/.test(pattern)) {
    const source = pattern
      .split(/(\*\*|\*|\?)/)
      .map((part) => (part === '**' ? '.*' : part === '*' ? '[^.]*' : part === '?' ? '[^.]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    const re = new RegExp(`^${source}$`);
    return (name) => re.test(name);
  }
  return (name) => name === pattern || name.endsWith(`.${pattern}`);
}

function asList(p: TargetPattern | readonly TargetPattern[] | undefined): readonly TargetPattern[] {
  if (p === undefined) return [];
  return Array.isArray(p) ? (p as readonly TargetPattern[]) : [p as TargetPattern];
}

function inLayers(site: Site, layers: Targeting['layers']): boolean {
  if (!layers || site.layer === undefined) return true;
  if (Array.isArray(layers)) return layers.includes(site.layer);
  const range = layers as { from?: number; to?: number };
  return site.layer >= (range.from ?? -Infinity) && site.layer <= (range.to ?? Infinity);
}

/**
 * PEFT's default targets per architecture for the LoRA family (LoRA, DoRA, VeRA, LoHa, LoKr: PEFT
 * copies one table for all of them), used when a method's `targets` is not given.
 */
export const PEFT_DEFAULT_TARGETS: Readonly<Record<string, readonly TargetPattern[]>> = {
  bert: ['query', 'value'],
  roberta: ['query', 'value'],
  'use-lite': ['query', 'value'],
  gpt2: ['c_attn'],
  llama: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  qwen3: ['q_proj', 'v_proj'],
};

/**
 * The sites of one kind that a method's targeting selects. Every pattern in `targets` must match at
 * least one site of that kind, else the error lists the closest site names: a typo never silently
 * selects nothing.
 */
export function selectSites<K extends SiteKind>(
  sites: readonly Site[],
  kinds: K | readonly K[],
  targeting: Targeting,
  defaultTargets?: readonly TargetPattern[],
): SiteOfKind<K>[] {
  const kindList: readonly SiteKind[] = Array.isArray(kinds) ? kinds : [kinds as K];
  const kind = kindList.join(' or ');
  const ofKind = sites.filter((s): s is SiteOfKind<K> => kindList.includes(s.kind));
  const targets = asList(targeting.targets).length > 0 ? asList(targeting.targets) : (defaultTargets ?? []);
  const excludes = asList(targeting.exclude).map(compilePattern);
  let chosen: SiteOfKind<K>[];
  if (targets.length === 0) {
    chosen = ofKind;
  } else {
    const matchers = targets.map((t) => ({ pattern: t, test: compilePattern(t) }));
    for (const m of matchers) {
      if (!ofKind.some((s) => m.test(s.name))) throw noMatchError(m.pattern, kind, ofKind);
    }
    chosen = ofKind.filter((s) => matchers.some((m) => m.test(s.name)));
  }
  chosen = chosen.filter((s) => !excludes.some((ex) => ex(s.name)) && inLayers(s, targeting.layers));
  if (chosen.length === 0) {
    throw new DeltaTuneError(
      `targeting selected no ${kind} site (targets ${JSON.stringify(targets.map(String))}, exclude ${JSON.stringify(
        asList(targeting.exclude).map(String),
      )}, layers ${JSON.stringify(targeting.layers ?? 'all')})`,
      'loosen `exclude` or `layers`; `deltatune inspect --model ...` lists every site',
    );
  }
  return chosen;
}

function noMatchError(pattern: TargetPattern, kind: string, sites: readonly Site[]): DeltaTuneError {
  const text = String(pattern);
  const names = sites.map((s) => s.name);
  const suggestions = closestNames(text, names, 5);
  return new DeltaTuneError(
    `target ${JSON.stringify(text)} matches no ${kind} site` +
      (suggestions.length ? `; closest: ${suggestions.join(', ')}` : `; this backbone has no ${kind} sites`),
    'use an exact site name, a suffix such as "query", a glob such as "encoder.layer.*.attention.self.query", or /regex/',
  );
}

/** The `count` names nearest to `query` by edit distance, to whole names or runs of their segments. */
export function closestNames(query: string, names: readonly string[], count: number): string[] {
  const q = query.toLowerCase();
  const width = q.split('.').length;
  const scored = [...new Set(names)].map((name) => {
    const lower = name.toLowerCase();
    // Compare with the whole name and with every run of as many segments as the query has.
    const segments = lower.split('.');
    let score = editDistance(q, lower);
    for (let i = 0; i + width <= segments.length; i++) score = Math.min(score, editDistance(q, segments.slice(i, i + width).join('.')));
    return { name, score };
  });
  scored.sort((a, b) => a.score - b.score || a.name.length - b.name.length || (a.name < b.name ? -1 : 1));
  return scored.slice(0, count).map((s) => s.name);
}

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
