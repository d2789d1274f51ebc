import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '@deltatune/core';
import type { TokenizedSplit } from './batches';
import { pooledFeatures } from './evaluate';
import type { TrainEvent } from './train-options';

/** The pooled backbone outputs of the train and validation splits, computed once. */
export interface FeatureCache {
  readonly train: tf.Tensor2D;
  readonly validation: tf.Tensor2D;
  dispose(): void;
}

/**
 * A frozen backbone (no trainable delta or base parameter) gives the same pooled output every
 * epoch: compute it once and train the head on the cache.
 */
export function cacheFeatures(
  backbone: Backbone,
  splits: { readonly train: TokenizedSplit; readonly validation: TokenizedSplit },
  batchSize: number,
  padId: number,
  emit: (e: TrainEvent) => void,
): FeatureCache {
  const total = splits.train.ids.length + splits.validation.ids.length;
  emit({ type: 'phase', name: 'features', total });
  const train = pooledFeatures(backbone, splits.train, batchSize, padId, (done) => emit({ type: 'progress', done, total }));
  const validation = pooledFeatures(backbone, splits.validation, batchSize, padId, (done) =>
    emit({ type: 'progress', done: splits.train.ids.length + done, total }),
  );
  return { train, validation, dispose: () => tf.dispose([train, validation]) };
}
