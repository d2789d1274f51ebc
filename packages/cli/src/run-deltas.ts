import { attach, getMethod, type Backbone, type Delta } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { loadDeltas } from './deltas';
import type { MethodRequest, RunSpec } from './run-spec';

/**
 * Attaches each requested method, its options parsed by the method's own schema. Each delta is
 * named by core's rule, `attach` without a name: the method's name, then `lora_2`, ..., unique also
 * beside deltas loaded from folders (`--delta`). `initText` (prompt tuning) is tokenized here, with
 * the backbone's tokenizer. If one fails, those attached before it are detached again.
 */
export function attachMethods(backbone: Backbone, methods: readonly MethodRequest[], seed: number, tokenizer?: TextTokenizer): Delta[] {
  const attached: Delta[] = [];
  try {
    for (const m of methods) {
      const method = getMethod(m.name);
      const options = method.options.parse(m.options) as Record<string, unknown>;
      if (typeof options.initText === 'string' && tokenizer) {
        options.initTokenIds = tokenizer.encodeOne(options.initText).ids;
        options.init ??= 'text';
      }
      attached.push(attach(backbone, method.create({ seed, ...options })));
    }
    return attached;
  } catch (e) {
    for (const d of attached) d.detach();
    throw e;
  }
}

/** What a run attached: the frozen deltas it loaded, the ones it trains, and each trained one's own learning rate by name. */
export interface RunDeltas {
  readonly frozen: readonly Delta[];
  readonly created: readonly Delta[];
  /** `--delta-lr` rates and a grid delta's `learningRate`, keyed by the name the delta got. */
  readonly learningRates: Readonly<Record<string, number>>;
}

/** Attaches a run's deltas, frozen ones first (so a created delta's name steps past theirs), as `train` and `experiment` both do. */
export function attachRunDeltas(backbone: Backbone, spec: RunSpec, tokenizer?: TextTokenizer): RunDeltas {
  const frozen = loadDeltas(backbone, spec.deltas.frozen);
  for (const d of frozen) d.trainable = false;
  let created: Delta[];
  try {
    created = attachMethods(backbone, spec.deltas.create, spec.train.seed, tokenizer);
  } catch (e) {
    for (const d of frozen) d.detach();
    throw e;
  }
  const own = spec.deltas.create.flatMap((request, i) =>
    request.learningRate === undefined ? [] : [[created[i].name, request.learningRate]],
  );
  return { frozen, created, learningRates: { ...spec.train.deltaLearningRates, ...Object.fromEntries(own) } };
}

/** A run's deltas as its results report them: which name each got, and its own learning rate. */
export interface DeltaSummary {
  readonly name: string;
  readonly method: string;
  readonly trained: boolean;
  readonly learningRate?: number;
}

export function summarizeDeltas(deltas: RunDeltas): DeltaSummary[] {
  return [...deltas.frozen, ...deltas.created].map((d) => ({
    name: d.name,
    method: d.method,
    trained: deltas.created.includes(d),
    ...(deltas.learningRates[d.name] === undefined ? {} : { learningRate: deltas.learningRates[d.name] }),
  }));
}
