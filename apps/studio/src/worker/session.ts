import * as tf from '@tensorflow/tfjs-core';
import { attach, countParameters, DeltaTuneError, encodeDelta, uniqueDeltaName, type Backbone, type Delta } from '@deltatune/core';
import { encodeBatch, batchToTensors, disposeInputs, type TextTokenizer } from '@deltatune/models';
import {
  classifierFiles,
  limitDataset,
  train,
  type ClassificationHead,
  type ClassificationMetrics,
  type ClassifierConfig,
  type TrainEvent,
} from '@deltatune/train';
import { strToU8, zipSync } from 'fflate';
import { studioMethod } from '../methods';
import type { MethodChoice, ModelSource, RunSummary, TrainRequest, WorkerToPage } from '../protocol';
import { loadModel } from './load-model';

type Post = (message: WorkerToPage, transfer?: Transferable[]) => void;

/** What a finished run leaves for trying and downloading; nothing while a run is going or after a failed one. */
interface TrainedModel {
  readonly deltas: readonly Delta[];
  readonly head: ClassificationHead;
  readonly config: ClassifierConfig;
  readonly datasetName: string;
}

/**
 * Attaches one method per choice, each option parsed by the method's own schema (the CLI's `--opt`
 * rules), seeded by the run's seed unless the options name one, `initText` tokenized: as `deltatune train` does.
 */
function attachChoices(backbone: Backbone, choices: readonly MethodChoice[], seed: number, tokenizer: TextTokenizer): Delta[] {
  const deltas: Delta[] = [];
  try {
    for (const choice of choices) {
      const method = studioMethod(choice.method);
      if (!method) throw new DeltaTuneError(`unknown method "${choice.method}"`, 'pick one of the listed methods');
      const options: Record<string, unknown> = { ...method.options.parse(choice.options) };
      if (typeof options.initText === 'string') options.initTokenIds = tokenizer.encodeOne(options.initText).ids;
      deltas.push(attach(backbone, method.create({ seed, ...options }), uniqueDeltaName(backbone, method.name)));
    }
    return deltas;
  } catch (e) {
    for (const d of deltas) d.detach();
    throw e;
  }
}

/** The training worker's state: one backbone (kept between runs of the same model), the last trained deltas and head. */
export class StudioSession {
  private model?: { key: string; backbone: Backbone; tokenizer: TextTokenizer; name: string };
  private trained?: TrainedModel;
  private controller?: AbortController;

  constructor(private readonly post: Post) {}

  stop(): void {
    this.controller?.abort();
  }

  private async modelFor(source: ModelSource, base: string) {
    const key = source.kind === 'use-lite' ? 'use-lite' : `folder:${source.pick}`;
    if (this.model?.key === key) return this.model;
    this.model?.backbone.dispose();
    this.model = undefined;
    this.post({ type: 'phase', name: 'load model', detail: source.kind === 'use-lite' ? 'USE-lite' : source.name });
    this.model = { key, ...(await loadModel(source, base)) };
    return this.model;
  }

  /** Forgets the last run: its deltas come off the backbone, its head is freed. */
  private clear(): void {
    for (const d of this.trained?.deltas ?? []) d.detach();
    this.trained?.head.dispose();
    this.trained = undefined;
  }

  async train(req: TrainRequest, backend: string): Promise<void> {
    this.clear();
    // Before the model loads, so a Stop pressed while it loads is not lost.
    const controller = (this.controller = new AbortController());
    let model: Awaited<ReturnType<StudioSession['modelFor']>>;
    try {
      model = await this.modelFor(req.model, req.assetsBase);
    } catch (e) {
      this.controller = undefined;
      throw e;
    }
    if (controller.signal.aborted) {
      this.controller = undefined;
      throw new DeltaTuneError('stopped before the first training step: nothing was trained', 'press Train to start again');
    }
    const { backbone, tokenizer, name: modelName } = model;
    const dataset = limitDataset(req.dataset, req.limits);
    const deltas = attachChoices(backbone, req.methods, req.settings.seed, tokenizer);
    let examplesPerSecond = 0;
    const started = performance.now();
    const onEvent = (e: TrainEvent) => {
      if (e.type === 'phase') this.post({ type: 'phase', name: e.name });
      else if (e.type === 'progress') this.post({ type: 'progress', done: e.done, total: e.total });
      else if (e.type === 'step') {
        examplesPerSecond = e.examplesPerSecond;
        this.post({ type: 'step', step: e.step, total: e.total, loss: e.loss, etaSeconds: e.etaSeconds });
      } else if (e.type === 'eval') this.post({ type: 'eval', step: e.step, accuracy: e.metrics.accuracy, loss: e.metrics.loss });
    };
    let head: ClassificationHead | undefined;
    try {
      const s = req.settings;
      const result = await train({
        backbone,
        tokenizer,
        dataset,
        deltas,
        learningRate: s.learningRate,
        batchSize: s.batchSize,
        steps: s.steps,
        maxLength: s.maxLength,
        warmupSteps: s.warmupSteps,
        evalEvery: s.evalEvery,
        seed: s.seed,
        signal: controller.signal,
        onEvent,
      });
      head = result.head!;
      // Stopped before any step: nothing was trained, so nothing is offered to try or download.
      if (result.steps === 0)
        throw new DeltaTuneError('stopped before the first training step: nothing was trained', 'press Train to start again');
      const counts = countParameters(backbone, head.variables);
      const test = result.test as ClassificationMetrics;
      const config: ClassifierConfig = {
        labels: dataset.labels,
        hidden: backbone.hiddenSize,
        dataset: req.datasetName,
        maxLength: s.maxLength,
        batchSize: s.batchSize,
        model: modelName,
        limits: req.limits,
        ...(req.columns ? { columns: req.columns } : {}),
        ...(deltas.length > 1 ? { deltas: deltas.map((d) => d.name) } : {}),
      };
      const summary: RunSummary = {
        methods: deltas.length ? deltas.map((d) => d.name).join(' + ') : 'head only',
        trainableParameters: counts.trainable,
        trainablePercent: counts.trainablePercent,
        accuracy: test.accuracy,
        macroF1: test.macroF1,
        testExamples: test.examples,
        steps: result.steps,
        plannedSteps: s.steps,
        stopped: result.stopped === true,
        seconds: (performance.now() - started) / 1000,
        // The trainer's own throughput, over the steps alone (not the evaluations).
        msPerStep: examplesPerSecond > 0 ? (1000 * s.batchSize) / examplesPerSecond : 0,
        backend,
      };
      this.trained = { deltas, head, config, datasetName: req.datasetName };
      this.post({ type: 'done', summary, labels: dataset.labels });
    } catch (e) {
      for (const d of deltas) d.detach();
      head?.dispose();
      throw e;
    } finally {
      this.controller = undefined;
    }
  }

  /** Class probabilities for one text, through the trained deltas and head. */
  async predict(text: string): Promise<number[]> {
    const trained = this.trained;
    if (!trained || !this.model) throw new DeltaTuneError('there is no trained model yet', 'train one first');
    const batch = encodeBatch(this.model.tokenizer, [text], { maxLength: trained.config.maxLength });
    const inputs = batchToTensors(batch);
    const probabilities = tf.tidy(() => tf.softmax(trained.head.logits(this.model!.backbone.forward(inputs).pooled)));
    disposeInputs(inputs);
    const out = Array.from(await probabilities.data());
    probabilities.dispose();
    return out;
  }

  /**
   * The run as the CLI saves it, zipped: one delta in `delta/` (a PEFT folder with the head beside
   * it), several in `deltas/<name>/` with the head in `deltas/`, the head alone in `head/`.
   */
  async exportZip(): Promise<{ fileName: string; zip: Uint8Array }> {
    const trained = this.trained;
    if (!trained)
      throw new DeltaTuneError('there is no finished run to download', 'train a model first; a failed run leaves nothing to download');
    const { deltas, head, config } = trained;
    const folder = deltas.length === 1 ? 'delta' : deltas.length ? 'deltas' : 'head';
    const entries: Record<string, Uint8Array> = {};
    const add = (path: string, data: string | Uint8Array) => (entries[path] = typeof data === 'string' ? strToU8(data) : data);
    const task = await classifierFiles(head, config);
    for (const d of deltas) {
      const files = await encodeDelta(d, { baseModel: config.model });
      const at = deltas.length === 1 ? folder : `${folder}/${d.name}`;
      for (const [name, data] of Object.entries(files)) add(`${at}/${name}`, data);
    }
    for (const [name, data] of Object.entries(task)) add(`${folder}/${name}`, data);
    const methods = deltas.length ? deltas.map((d) => d.name).join('+') : 'head';
    const safe = (s: string) => s.replace(/[^\w.-]+/g, '_');
    return { fileName: `deltatune-${safe(methods)}-${safe(trained.datasetName)}.zip`, zip: zipSync(entries, { level: 6 }) };
  }
}
