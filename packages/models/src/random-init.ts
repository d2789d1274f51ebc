import { createRng, normal, type RawTensor } from '@deltatune/core';
import { BertBackbone, type BertConfig } from './bert';
import { WeightStore } from './weights';

/** BERT-base's shape (bert-base-uncased), for benchmarks. */
export const BERT_BASE: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  intermediateSize: 3072,
  maxPositions: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: 'gelu',
  padTokenId: 0,
};

/**
 * A BERT with random weights (normal, std 0.02, layer norms at 1/0), in the file layout the
 * loader expects: for benchmarks, where the numbers do not matter and the shapes do.
 */
export function randomBert(config: BertConfig, seed = 0): BertBackbone {
  const rng = createRng(seed);
  const tensors = new Map<string, RawTensor>();
  const put = (name: string, shape: number[], fill?: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (fill === undefined) {
      const t = normal(rng, [n], 0.02);
      data = Float32Array.from(t.dataSync());
      t.dispose();
    } else data = new Float32Array(n).fill(fill);
    tensors.set(name, { dtype: 'float32', shape, data, storedAs: 'F32' });
  };
  const h = config.hiddenSize;
  const linear = (name: string, inF: number, outF: number) => {
    put(`${name}.weight`, [outF, inF]);
    put(`${name}.bias`, [outF], 0);
  };
  const norm = (name: string) => {
    put(`${name}.weight`, [h], 1);
    put(`${name}.bias`, [h], 0);
  };
  put('embeddings.word_embeddings.weight', [config.vocabSize, h]);
  put('embeddings.position_embeddings.weight', [config.maxPositions, h]);
  put('embeddings.token_type_embeddings.weight', [config.typeVocabSize, h]);
  norm('embeddings.LayerNorm');
  for (let i = 0; i < config.numLayers; i++) {
    const p = `encoder.layer.${i}`;
    for (const m of ['query', 'key', 'value']) linear(`${p}.attention.self.${m}`, h, h);
    linear(`${p}.attention.output.dense`, h, h);
    norm(`${p}.attention.output.LayerNorm`);
    linear(`${p}.intermediate.dense`, h, config.intermediateSize);
    linear(`${p}.output.dense`, config.intermediateSize, h);
    norm(`${p}.output.LayerNorm`);
  }
  linear('pooler.dense', h, h);
  return new BertBackbone('bert', config, new WeightStore(tensors, `random BERT (seed ${seed})`));
}
