import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { dense } from './ops/dense';
import type { HookRegistry, PassContext } from './hooks';
import type { AttentionSite, EmbeddingsSite, LinearSite, NormSite, SublayerSite } from './sites';

/**
 * The helpers a backbone calls at its hook sites. With no hooks registered each is the plain
 * computation, so a backbone with everything detached runs exactly as before attach.
 */

/** `x W + b` over the last axis of `x`, with the site's linear hooks around it (weight, input, output). */
export function runLinear(hooks: HookRegistry, site: LinearSite, x: Tensor, ctx: PassContext): Tensor {
  const list = hooks.at('linear', site.name);
  let kernel: Tensor = site.kernel;
  for (const h of list) if (h.weight) kernel = h.weight(kernel, site, ctx);
  let input = x;
  for (const h of list) if (h.input) input = h.input(input, site, ctx);
  let y = denseLastAxis(input, kernel, site.bias);
  for (const h of list) if (h.output) y = h.output(input, y, site, ctx);
  return y;
}

/** `x W (+ b)` for `x` of any rank: flattens the leading axes into one matmul. */
export function denseLastAxis(x: Tensor, kernel: Tensor, bias?: Tensor): Tensor {
  const inFeatures = x.shape[x.rank - 1];
  const lead = x.shape.slice(0, -1);
  const flat = x.rank === 2 ? (x as tf.Tensor2D) : (tf.reshape(x, [-1, inFeatures]) as tf.Tensor2D);
  const y = dense(flat, kernel, bias);
  return x.rank === 2 ? y : tf.reshape(y, [...lead, kernel.shape[1] as number]);
}

export function runSublayer(hooks: HookRegistry, site: SublayerSite, input: Tensor, output: Tensor, ctx: PassContext): Tensor {
  let out = output;
  for (const h of hooks.at('sublayer', site.name)) out = h({ input, output: out }, site, ctx);
  return out;
}

/** Extra keys/values from every attention hook, concatenated in hook order; null when none. */
export function runAttention(
  hooks: HookRegistry,
  site: AttentionSite,
  batchSize: number,
  ctx: PassContext,
): { key: Tensor; value: Tensor; length: number } | null {
  const list = hooks.at('attention', site.name);
  if (list.length === 0) return null;
  const extras = list.map((h) => h(batchSize, site, ctx));
  const key =
    extras.length === 1
      ? extras[0].key
      : tf.concat(
          extras.map((e) => e.key),
          2,
        );
  const value =
    extras.length === 1
      ? extras[0].value
      : tf.concat(
          extras.map((e) => e.value),
          2,
        );
  return { key, value, length: key.shape[2] as number };
}

/** Token embeddings with every embeddings hook's positions in front; `prepended` counts them. */
export function runEmbeddings(
  hooks: HookRegistry,
  site: EmbeddingsSite,
  embeds: Tensor,
  ctx: PassContext,
): { embeds: Tensor; prepended: number } {
  const list = hooks.at('embeddings', site.name);
  if (list.length === 0) return { embeds, prepended: 0 };
  const prefixes = list.map((h) => h(embeds, site, ctx));
  const prepended = prefixes.reduce((n, p) => n + (p.shape[1] as number), 0);
  return { embeds: tf.concat([...prefixes, embeds], 1), prepended };
}

/** A layer norm's output `y` through the site's norm hooks (computed by the backbone, which knows its epsilon). */
export function runNorm(hooks: HookRegistry, site: NormSite, y: Tensor, ctx: PassContext): Tensor {
  let out = y;
  for (const h of hooks.at('norm', site.name)) out = h(out, site, ctx);
  return out;
}
