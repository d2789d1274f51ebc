import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { DeltaTuneError, type Backbone, type BackboneInputs } from '@deltatune/core';
import { batchToTensors, disposeInputs, encodeBatch } from '@deltatune/models';
import { writeFileAtomic } from '@deltatune/node';
import { loadDeltas } from '../deltas';
import { checkOutFile } from '../out-file';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { modelAndTokenizer, output, prepare, resolveModel } from '../context';
import { defineCommand } from './command';

/** The keys of out.json: a file holding only these is one forward wrote. */
const FORWARD_OUTPUTS = ['last_hidden_state', 'pooler_output', 'logits', 'embedding'];

const FORWARD_FLAGS = {
  model: flag({
    type: 'text',
    accepts: 'a Hugging Face model folder or hub id, or use-lite',
    help: 'the backbone to run',
    placeholder: 'MODEL',
  }),
  inputs: flag({
    type: 'text',
    accepts: 'a .json file',
    help: 'token ids: { "input_ids": [[...]], "attention_mask": [[...]], "token_type_ids": [[...]] (BERT) }',
    placeholder: 'FILE',
  }),
  text: flag({ type: 'text', help: "an input text, tokenized with the model's tokenizer", placeholder: 'TEXT', repeatable: true }),
  out: flag({ type: 'text', accepts: 'a .json file', help: 'where the outputs are written (else printed)', placeholder: 'FILE' }),
  delta: flag({ type: 'text', accepts: 'a saved delta folder', help: 'a delta to attach', placeholder: 'DIR', repeatable: true }),
  merge: flag({ type: 'switch', help: 'fold the deltas into the weights before running (LoRA family, BitFit)' }),
  overwrite: flag({ type: 'switch', help: 'replace an --out file that forward did not write' }),
  ...COMMON_FLAGS,
} as const;

export const forwardCommand = defineCommand({
  name: 'forward',
  summary: 'run a backbone (with deltas) on inputs, write its outputs',
  about: `deltatune forward --model <folder|use-lite> (--inputs in.json | --text "..."...) [--out out.json] [--delta DIR]... [--merge]
  out.json: last_hidden_state + pooler_output (BERT/RoBERTa), logits (GPT-2, Llama family), embedding (USE-lite)`,
  flags: FORWARD_FLAGS,
  run: (flags) => forward(flags),
});

/**
 * Reads and checks `in.json` against the model: ragged rows, ids past the vocabulary or rows past
 * the position table would otherwise fail inside tfjs (`GatherV2: index 120 not in [0, 119]`).
 */
function readInputs(path: string, backbone: Backbone): BackboneInputs {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DeltaTuneError(
      `cannot read inputs ${path}: ${(e as Error).message.split('\n')[0]}`,
      'give a JSON file with input_ids and attention_mask (arrays of rows)',
    );
  }
  const example = 'write { "input_ids": [[101, 7592, 102]], "attention_mask": [[1, 1, 1]] }';
  if (!data || typeof data !== 'object' || !Array.isArray(data.input_ids))
    throw new DeltaTuneError(`${path} has no "input_ids" array`, example);
  const ids = matrix(data.input_ids, 'input_ids', path, 0, backbone.vocabSize ?? Number.MAX_SAFE_INTEGER, "the model's vocabulary");
  const width = ids[0].length;
  if (backbone.maxPositions !== undefined && width > backbone.maxPositions) {
    throw new DeltaTuneError(
      `${path}: rows of ${width} tokens are longer than this ${backbone.architecture} model's ${backbone.maxPositions} positions`,
      `truncate each row to at most ${backbone.maxPositions} tokens`,
    );
  }
  const same = (m: number[][], name: string) => {
    if (m.length !== ids.length || m[0].length !== width) {
      throw new DeltaTuneError(
        `${path}: ${name} is ${m.length} x ${m[0].length}, input_ids is ${ids.length} x ${width}`,
        `give ${name} the shape of input_ids`,
      );
    }
    return m;
  };
  const mask =
    data.attention_mask === undefined
      ? ids.map((row) => row.map(() => 1))
      : same(matrix(data.attention_mask, 'attention_mask', path, 0, 2, 'the values 0 and 1'), 'attention_mask');
  const types =
    data.token_type_ids === undefined
      ? undefined
      : same(
          matrix(data.token_type_ids, 'token_type_ids', path, 0, backbone.typeVocabSize ?? 1, "the model's token types"),
          'token_type_ids',
        );
  return {
    inputIds: tf.tensor2d(ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask, undefined, 'int32'),
    tokenTypeIds: types ? tf.tensor2d(types, undefined, 'int32') : undefined,
  };
}

/** A non-empty rectangle of whole numbers in [lo, hi). */
function matrix(value: unknown, name: string, path: string, lo: number, hi: number, range: string): number[][] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((r) => Array.isArray(r))) {
    throw new DeltaTuneError(
      `${path}: ${name} must be a non-empty array of rows (arrays of numbers)`,
      `e.g. "${name}": [[101, 7592, 102]]`,
    );
  }
  const rows = value as unknown[][];
  const width = rows[0].length;
  if (width === 0) throw new DeltaTuneError(`${path}: ${name} has an empty row`, 'give every row at least one token');
  rows.forEach((row, r) => {
    if (row.length !== width) {
      throw new DeltaTuneError(
        `${path}: ${name} row ${r} has ${row.length} entries, row 0 has ${width}`,
        'pad every row to one length (and mark the padding 0 in attention_mask)',
      );
    }
    row.forEach((v, c) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v >= hi) {
        const fix =
          name === 'input_ids'
            ? `give ids from the model's tokenizer (deltatune forward --text "..." tokenizes for you)`
            : `give ${name} values in ${lo}..${hi - 1}`;
        throw new DeltaTuneError(
          `${path}: ${name}[${r}][${c}] is ${
            typeof v === 'number' ? String(v) : JSON.stringify(v)
          }, outside ${range} (whole numbers ${lo}..${hi - 1})`,
          fix,
        );
      }
    });
  });
  return rows as number[][];
}

async function forward(flags: Flags<typeof FORWARD_FLAGS>): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.value('json');
  const model = flags.required('model', 'e.g. --model use-lite, or a Hugging Face folder');
  const inputsPath = flags.value('inputs');
  const texts = flags.value('text');
  const outPath = flags.value('out');
  const deltaDirs = flags.value('delta');
  const merge = flags.value('merge');
  const overwrite = flags.value('overwrite');
  if (outPath)
    checkOutFile(
      outPath,
      overwrite,
      'deltatune forward',
      (j) => Object.keys(j).length > 0 && Object.keys(j).every((k) => FORWARD_OUTPUTS.includes(k)),
    );
  if (inputsPath && texts.length)
    throw new DeltaTuneError(
      '--inputs and --text both give the inputs',
      'give token ids with --inputs in.json, or text with --text "...", not both',
    );
  if (!inputsPath && texts.length === 0)
    throw new DeltaTuneError('deltatune forward needs --inputs in.json or --text', 'e.g. --text "hello world"');
  const { backbone, tokenizer } = modelAndTokenizer(await resolveModel(model, json), !inputsPath);
  const deltas = loadDeltas(backbone, deltaDirs);
  if (merge) {
    for (const d of deltas) {
      if (!d.merge)
        throw new DeltaTuneError(
          `delta "${d.name}" (${d.method}) cannot be merged`,
          'drop --merge; only merge-able methods (LoRA family, BitFit) fold into the weights',
        );
      d.merge();
    }
  }
  const inputs = inputsPath ? readInputs(inputsPath, backbone) : batchToTensors(encodeBatch(tokenizer!, texts));
  const out = backbone.forward(inputs);
  const result: Record<string, unknown> = {};
  if (out.logits) result.logits = await out.logits.array();
  else if (backbone.architecture === 'use-lite') result.embedding = await out.embedding!.array();
  else {
    result.last_hidden_state = await out.lastHiddenState!.array();
    result.pooler_output = await out.pooled.array();
  }
  tf.dispose([out.lastHiddenState, out.pooled, out.logits, out.embedding].filter((t): t is tf.Tensor => !!t));
  disposeInputs(inputs);
  if (outPath) writeFileAtomic(outPath, JSON.stringify(result) + '\n');
  const shapes = Object.fromEntries(Object.entries(result).map(([k, v]) => [k, shapeOf(v)]));
  output(
    json,
    {
      backend,
      model,
      deltas: deltas.map((d) => ({ name: d.name, method: d.method, merged: !!d.merged })),
      outputs: shapes,
      out: outPath ?? null,
      ...(outPath ? {} : result),
    },
    () =>
      Object.entries(shapes)
        .map(([k, s]) => `${k}: [${s.join(', ')}]`)
        .join('\n') + (outPath ? `\nwritten to ${outPath}` : ''),
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
