import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { causalLmLoss } from '@deltatune/train';

/** -log softmax(logits)[target], in float64 on the CPU: the reference the masked loss must equal. */
function nll(row: readonly number[], target: number): number {
  const max = Math.max(...row);
  const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
  return lse - row[target];
}

describe('causal LM loss with a loss mask', () => {
  // Two rows of five positions over a vocabulary of six; row 1 padded after three tokens.
  const logits = Array.from({ length: 2 }, (_, b) =>
    Array.from({ length: 5 }, (_, t) => Array.from({ length: 6 }, (_, v) => Math.sin(1 + b * 31 + t * 7 + v * 3) * 3)),
  );
  const ids = [
    [1, 4, 2, 5, 3],
    [2, 0, 5, 0, 0],
  ];
  const attention = [
    [1, 1, 1, 1, 1],
    [1, 1, 1, 0, 0],
  ];
  // Targets: row 0's last two tokens (a completion), row 1's third (and a 1 on padding, which must not count).
  const lossMask = [
    [0, 0, 0, 1, 1],
    [0, 0, 1, 0, 1],
  ];

  const loss = (mask?: number[][]) =>
    tf.tidy(
      () =>
        causalLmLoss(
          tf.tensor3d(logits),
          tf.tensor2d(ids, undefined, 'int32'),
          tf.tensor2d(attention, undefined, 'int32'),
          mask && tf.tensor2d(mask, undefined, 'int32'),
        ).dataSync()[0],
    );

  it('is the mean of -log p(target) over the masked positions only, shifted as the targets are', () => {
    // Token t is predicted from position t - 1.
    const expected = (nll(logits[0][2], ids[0][3]) + nll(logits[0][3], ids[0][4]) + nll(logits[1][1], ids[1][2])) / 3;
    expect(loss(lossMask)).toBeCloseTo(expected, 5);
    // Not the unshifted reading (position t predicting token t), which a wrong slice would give.
    const unshifted = (nll(logits[0][3], ids[0][3]) + nll(logits[0][4], ids[0][4]) + nll(logits[1][2], ids[1][2])) / 3;
    expect(Math.abs(loss(lossMask) - unshifted)).toBeGreaterThan(0.1);
  });

  it('without a mask (or an all-ones one) averages every real next token, as --task lm does', () => {
    let sum = 0;
    let n = 0;
    for (let b = 0; b < 2; b++)
      for (let t = 1; t < 5; t++)
        if (attention[b][t]) {
          sum += nll(logits[b][t - 1], ids[b][t]);
          n++;
        }
    expect(loss()).toBeCloseTo(sum / n, 5);
    expect(loss(ids.map((r) => r.map(() => 1)))).toBeCloseTo(sum / n, 5);
  });
});
