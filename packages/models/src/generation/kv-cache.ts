import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';

/**
 * The keys and values of the positions a decoder has already run, per layer, so the next token
 * costs one position instead of the whole prefix. Keys are stored after RoPE, per key-value head
 * (`[batch, kvHeads, length, headDim]`), prefix-tuning's virtual keys first. `mask` (`[batch,
 * length]`, 1/0) marks the positions each row may attend to: left padding stays masked for the
 * whole generation. The cache owns its tensors; `dispose()` frees them.
 */
export class KeyValueCache {
  private keys: Tensor[] = [];
  private values: Tensor[] = [];
  private keyMask: Tensor | undefined;
  /** Per row: positions run so far that count for RoPE (masked padding does not). */
  private seen: Tensor | undefined;

  constructor(readonly batchSize: number) {}

  /** Positions held (the same for every row, padding included). */
  get length(): number {
    return (this.keyMask?.shape[1] as number | undefined) ?? 0;
  }

  /** `[batch, length]` float32, or undefined when empty. */
  get mask(): Tensor | undefined {
    return this.keyMask;
  }

  /** `[batch]` float32: how many real (or virtual) positions each row has run: its next RoPE position. */
  get positionsSeen(): Tensor | undefined {
    return this.seen;
  }

  layer(i: number): { key: Tensor; value: Tensor } | undefined {
    return this.keys[i] ? { key: this.keys[i], value: this.values[i] } : undefined;
  }

  /** Replaces layer `i`'s keys and values with ones that extend them (the cache keeps them past any tidy). */
  setLayer(i: number, key: Tensor, value: Tensor): void {
    this.keys[i]?.dispose();
    this.values[i]?.dispose();
    this.keys[i] = tf.keep(key);
    this.values[i] = tf.keep(value);
  }

  /** Records the mask of all positions held after this pass, and each row's count of real ones. */
  setMask(mask: Tensor): void {
    this.keyMask?.dispose();
    this.seen?.dispose();
    this.keyMask = tf.keep(mask);
    this.seen = tf.keep(tf.sum(mask, 1));
  }

  dispose(): void {
    tf.dispose([...this.keys, ...this.values]);
    this.keyMask?.dispose();
    this.seen?.dispose();
    this.keys = [];
    this.values = [];
    this.keyMask = undefined;
    this.seen = undefined;
  }
}
