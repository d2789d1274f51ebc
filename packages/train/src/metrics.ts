export interface ClassificationMetrics {
  readonly accuracy: number;
  readonly macroF1: number;
  readonly loss: number;
  readonly examples: number;
}

/** Accuracy and macro-averaged F1 from predictions and labels. */
export function classificationMetrics(
  predicted: ArrayLike<number>,
  labels: ArrayLike<number>,
  numLabels: number,
  loss: number,
): ClassificationMetrics {
  let correct = 0;
  const tp = new Array(numLabels).fill(0);
  const fp = new Array(numLabels).fill(0);
  const fn = new Array(numLabels).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const p = predicted[i];
    const y = labels[i];
    if (p === y) {
      correct++;
      tp[y]++;
    } else {
      fp[p]++;
      fn[y]++;
    }
  }
  const f1s = tp.map((t, c) => (t === 0 ? 0 : (2 * t) / (2 * t + fp[c] + fn[c])));
  return {
    accuracy: labels.length ? correct / labels.length : 0,
    macroF1: f1s.reduce((a, b) => a + b, 0) / numLabels,
    loss,
    examples: labels.length,
  };
}

export interface LmMetrics {
  readonly loss: number;
  readonly perplexity: number;
  readonly examples: number;
}
