import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, attach, countParameters } from '@deltatune/core';
import { loadUseLite, loadTokenizer } from '@deltatune/models/node';
import { lora } from '@deltatune/lora';
import { train, loadDataset, limitDataset } from '@deltatune/train';
await selectBackend('wasm');
const [mode, steps, ml, ntrain, lr] = process.argv.slice(2);
const m = loadUseLite(); const tok = loadTokenizer('use-lite');
let ds = loadDataset('spam');
console.log(ds.train.length, ds.validation.length, ds.test.length);
ds = limitDataset(ds, { train: Number(ntrain), validation: 300 });
const targets = process.argv[7] ? process.argv[7].split(',') : undefined; const deltas = mode === 'lora' ? [attach(m, lora({ r: 8, alpha: 16, targets }))] : [];
const t0 = Date.now();
const r = await train({ backbone: m, tokenizer: tok, dataset: ds, deltas, learningRate: Number(lr), batchSize: 32, steps: Number(steps), maxLength: Number(ml), evalEvery: 0, seed: 1, warmupSteps: 10,
  onEvent: (e) => { if (e.type === 'step' && e.step % 10 === 0) console.log(e.step, e.loss.toFixed(4), ((Date.now()-t0)/1000).toFixed(1)); if (e.type==='phase') console.log('phase', e.name, ((Date.now()-t0)/1000).toFixed(1)); } });
console.log(mode, 'val', r.validation.accuracy, 'test', r.test, 'sec', r.seconds, 'tensors', tf.memory().numTensors);
