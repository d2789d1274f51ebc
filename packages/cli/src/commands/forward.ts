import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { DeltaTuneError, type BackboneInputs } from '@deltatune/core';
import { batchToTensors, disposeInputs, encodeBatch } from '@deltatune/models';
import { writeFileAtomic } from '@deltatune/node';
import { loadDeltas } from '../deltas';
import type { Flags } from '../args';
import { modelAndTokenizer, output, prepare } from '../context';

export const FORWARD_HELP = `deltatune forward --model <folder|use-lite> (--inputs in.json | --text "..."...) [--out out.json]
  [--delta DIR]... [--merge] [--plugin PKG]... [--backend ...] [--json]
  in.json: { "input_ids": [[...]], "attention_mask": [[...]], "token_type_ids": [[...]] (BERT) }
  out.json: last_hidden_state + pooler_output (BERT/RoBERTa), logits (GPT-2), embedding (USE-lite)`;

function readInputs(path: string): BackboneInputs {
  let data: Record<string, number[][]>;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DeltaTuneError(`cannot read inputs ${path}: ${(e as Error).message.split('\n')[0]}`, 'give a JSON file with input_ids and attention_mask (arrays of rows)');
  }
  if (!Array.isArray(data.input_ids)) throw new DeltaTuneError(`${path} has no "input_ids" array`, 'write { "input_ids": [[101, 7592, 102]], "attention_mask": [[1, 1, 1]] }');
  const mask = data.attention_mask ?? data.input_ids.map((row) => row.map(() => 1));
  return {
    inputIds: tf.tensor2d(data.input_ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask, undefined, 'int32'),
    tokenTypeIds: data.token_type_ids ? tf.tensor2d(data.token_type_ids, undefined, 'int32') : undefined,
  };
}

export async function forwardCommand(flags: Flags): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.bool('json');
  const model = flags.required('model', 'e.g. --model use-lite, or a Hugging Face folder');
  const inputsPath = flags.string('inputs');
  const texts = flags.all('text');
  const outPath = flags.string('out');
  const deltaDirs = flags.all('delta');
  const merge = flags.bool('merge');
  flags.finish();
  if (!inputsPath && texts.length === 0) throw new DeltaTuneError('deltatune forward needs --inputs in.json or --text', 'e.g. --text "hello world"');
  const { backbone, tokenizer } = modelAndTokenizer(model, !inputsPath);
  const deltas = loadDeltas(backbone, deltaDirs);
  if (merge) {
    for (const d of deltas) {
      if (!d.merge) throw new DeltaTuneError(`delta "${d.name}" (${d.method}) cannot be merged`, 'drop --merge; only merge-able methods (LoRA family, BitFit) fold into the weights');
      d.merge();
    }
  }
  const inputs = inputsPath ? readInputs(inputsPath) : batchToTensors(encodeBatch(tokenizer!, texts));
  const out = backbone.forward(inputs);
  const result: Record<string, unknown> = {};
  if (backbone.architecture === 'gpt2') result.logits = await out.logits!.array();
  else if (backbone.architecture === 'use-lite') result.embedding = await out.embedding!.array();
  else {
    result.last_hidden_state = await out.lastHiddenState!.array();
    result.pooler_output = await out.pooled.array();
  }
  tf.dispose([out.lastHiddenState, out.pooled, out.logits, out.embedding].filter((t): t is tf.Tensor => !!t));
  disposeInputs(inputs);
  if (outPath) writeFileAtomic(outPath, JSON.stringify(result) + '\n');
  const shapes = Object.fromEntries(Object.entries(result).map(([k, v]) => [k, shapeOf(v)]));
  output(json, { backend, model, deltas: deltas.map((d) => ({ name: d.name, method: d.method, merged: !!d.merged })), outputs: shapes, out: outPath ?? null, ...(outPath ? {} : result) }, () =>
    Object.entries(shapes).map(([k, s]) => `${k}: [${s.join(', ')}]`).join('\n') + (outPath ? `\nwritten to ${outPath}` : ''),
  );
  for (const d of deltas) d.detach();
  backbone.dispose();
}

function shapeOf(v: unknown): number[] {
  const shape: number[] = [];
  let x = v;
  while (Array.isArray(x)) {
    shape.push(x.length);
    x = x[0];
  }
  return shape;
}
