import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attach } from '@deltatune/core';
import { lora } from '@deltatune/lora';
import { loadBackbone, loadTokenizer } from '@deltatune/models/node';
import { evaluateLm, sftSamples, tokenizeSftSplit, train, type LmMetrics, type SftExample, type TrainEvent } from '@deltatune/train';
import { loadSftFile } from '@deltatune/train/node';
import { reverseTaskLines, writeTinyQwen3 } from './fixtures/tiny-qwen3';

const dir = writeTinyQwen3(mkdtempSync(join(tmpdir(), 'sft-qwen3-')));

describe('instruction tuning (task sft)', () => {
  it('LoRA on a tiny Qwen3 lowers the held-out completion loss of a learnable task', async () => {
    const data = join(dir, 'reverse.jsonl');
    writeFileSync(data, reverseTaskLines(120).join('\n') + '\n');
    const model = loadBackbone(dir);
    const tokenizer = loadTokenizer(dir);
    const dataset = loadSftFile(data);
    const maxLength = 24;
    const t0 = Date.now();
    const before = await evaluateLm(model, tokenizeSftSplit(tokenizer, dataset.test, maxLength), 16, tokenizer.padId);
    const delta = attach(model, lora({ r: 8, alpha: 16, targets: ['q_proj', 'v_proj'] }));
    const tensors = tf.memory().numTensors;
    const result = await train({
      backbone: model,
      tokenizer,
      dataset,
      task: 'sft',
      deltas: [delta],
      learningRate: 5e-2,
      batchSize: 16,
      steps: 16,
      maxLength,
      warmupSteps: 2,
      seed: 1,
      evalEvery: 0,
    });
    const after = result.test as LmMetrics;
    console.log(
      `held-out completion loss ${before.loss.toFixed(3)} -> ${after.loss.toFixed(3)} ` +
        `(perplexity ${before.perplexity.toFixed(0)} -> ${after.perplexity.toFixed(1)}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    expect(after.loss).toBeLessThan(before.loss * 0.8);
    expect(tf.memory().numTensors).toBe(tensors);
    delta.detach();
    model.dispose();
  });

  it('conversations, packed: the assistant turns of the chat template train, and samples continue the last prompt', async () => {
    const lines = reverseTaskLines(24).map((l) => {
      const { prompt, completion } = JSON.parse(l) as { prompt: string; completion: string };
      return JSON.stringify({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: prompt.trim() },
          { role: 'assistant', content: completion },
        ],
      });
    });
    const data = join(dir, 'chat.jsonl');
    writeFileSync(data, lines.join('\n'));
    const model = loadBackbone(dir);
    const tokenizer = loadTokenizer(dir);
    const dataset = loadSftFile(data);
    const delta = attach(model, lora({ r: 4, targets: ['q_proj', 'v_proj'] }));
    const events: TrainEvent[] = [];
    // After its first pass the backbone keeps one transposed copy of its frozen LM head (LlamaBackbone).
    tf.tidy(() => {
      const ids = tf.tensor2d([[1, 2]], undefined, 'int32');
      model.forward({ inputIds: ids, attentionMask: tf.onesLike(ids) });
    });
    const tensors = tf.memory().numTensors;
    const result = await train({
      backbone: model,
      tokenizer,
      dataset,
      deltas: [delta],
      task: 'sft',
      pack: true,
      learningRate: 1e-2,
      batchSize: 2,
      steps: 3,
      maxLength: 96,
      seed: 0,
      evalEvery: 0,
      onEvent: (e) => events.push(e),
    });
    expect(tf.memory().numTensors).toBe(tensors);
    // 16 conversations of ~30 tokens: three to a row of 96.
    const packed = events.find((e) => e.type === 'packed');
    expect(packed).toMatchObject({ examples: dataset.train.length });
    expect((packed as { rows: number }).rows).toBeLessThanOrEqual(Math.ceil(dataset.train.length / 3));
    expect(Number.isFinite((result.test as LmMetrics).loss)).toBe(true);
    expect(result.dropped).toEqual({ train: 0, validation: 0, test: 0 });
    const samples = await sftSamples(model, tokenizer, dataset.test as readonly SftExample[], { count: 2, maxNewTokens: 4, maxLength: 96 });
    expect(samples).toHaveLength(2);
    expect(samples[0].prompt).toMatch(
      /^<\|im_start\|>system\nBe brief\.<\|im_end\|>\n<\|im_start\|>user\nReverse: [a-e] [a-e] [a-e]<\|im_end\|>\n<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/,
    );
    expect(samples[0].reference).toMatch(/^[a-e] [a-e] [a-e]$/);
    delta.detach();
    model.dispose();
  });
});
