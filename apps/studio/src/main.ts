import { DeltaTuneError } from '@deltatune/core';
import { TrainingChart } from './chart';
import { DatasetFile, spamSample, type PageDataset } from './data-source';
import { MethodPicker } from './method-form';
import type { BackendRequest, ModelSource, PageToWorker, RunSummary, TrainRequest, TrainSettings, WorkerToPage } from './protocol';
import { readSettings, readLimits } from './settings';
import { $, formatSeconds, showError, clearError } from './page';

const chart = new TrainingChart($('chart'));
const methods = new MethodPicker($('methods'));

// ---------------------------------------------------------------------------------------------
// The worker: one per backend choice (tensors cannot move between backends mid-session).

let worker: Worker | undefined;
let workerBackend: BackendRequest | undefined;
let training = false;
let trainedLabels: readonly string[] = [];

function workerFor(backend: BackendRequest): Worker {
  if (worker && workerBackend === backend) return worker;
  worker?.terminate();
  worker = new Worker(new URL('./worker/worker.ts', import.meta.url), { type: 'module' });
  workerBackend = backend;
  worker.onmessage = (e: MessageEvent<WorkerToPage>) => onWorkerMessage(e.data);
  worker.onerror = (e) => {
    // A worker that failed is not reused: the next run starts a new one.
    worker?.terminate();
    worker = workerBackend = undefined;
    showError(
      `the training worker failed: ${e.message || 'it could not start'} (${e.filename}:${e.lineno})`,
      'reload the page; if it persists, try the wasm backend',
    );
    finishRun(false);
  };
  return worker;
}

function send(message: PageToWorker, transfer: Transferable[] = []): void {
  worker!.postMessage(message, transfer);
}

// ---------------------------------------------------------------------------------------------
// Backbone and data

function modelChoice(): 'use-lite' | 'folder' {
  return (document.querySelector<HTMLInputElement>('input[name=model]:checked')!.value as 'use-lite' | 'folder') ?? 'use-lite';
}

/** A Hugging Face folder picked on disk: only the files a backbone and tokenizer read. */
let folderSource: ModelSource | undefined;
let folderPicks = 0;
const MODEL_FILE =
  /(^|\/)(config\.json|tokenizer\.json|tokenizer_config\.json|generation_config\.json|chat_template\.jinja|model.*\.safetensors(\.index\.json)?)$/;

async function readModelFolder(files: FileList): Promise<void> {
  folderSource = undefined;
  $('model-status').textContent = '';
  const pick = ++folderPicks;
  // The folder's own files only (folder/file): checkpoint-*/ subfolders hold other copies.
  const topLevel = (f: File) => (f.webkitRelativePath || f.name).split('/').length <= 2;
  const picked = [...files].filter((f) => topLevel(f) && MODEL_FILE.test(f.webkitRelativePath || f.name));
  const name = (files[0]?.webkitRelativePath || '').split('/')[0] || 'model';
  if (!picked.some((f) => /(^|\/)config\.json$/.test(f.webkitRelativePath || f.name))) {
    throw new DeltaTuneError(
      `the folder ${name} has no config.json`,
      'pick the Hugging Face model folder itself (config.json, model.safetensors, tokenizer.json)',
    );
  }
  const entries = await Promise.all(
    picked.map(async (f) => [f.webkitRelativePath || f.name, new Uint8Array(await f.arrayBuffer())] as const),
  );
  if (pick !== folderPicks) return; // a later pick has taken over
  folderSource = { kind: 'folder', name, pick, files: new Map(entries) };
  $('model-status').textContent = `${name}: ${entries.map(([p]) => p.split('/').pop()).join(', ')}`;
}

function modelSource(): ModelSource {
  if (modelChoice() === 'use-lite') return { kind: 'use-lite' };
  if (!folderSource) throw new DeltaTuneError('no model folder picked', 'choose a Hugging Face model folder, or pick USE-lite');
  return folderSource;
}

function dataChoice(): 'spam' | 'file' {
  return document.querySelector<HTMLInputElement>('input[name=data]:checked')!.value as 'spam' | 'file';
}

let spam: PageDataset | undefined;
let dataFile: DatasetFile | undefined;
let filePicks = 0;

function fillColumnPicker(file: DatasetFile): void {
  for (const [id, suggested] of [
    ['text-column', file.suggested.text],
    ['label-column', file.suggested.label],
  ] as const) {
    const select = $(id) as HTMLSelectElement;
    select.replaceChildren(...file.columns.map((c) => new Option(c === '' ? '(unnamed)' : c, c, false, c === suggested)));
    if (suggested === undefined) select.selectedIndex = -1;
  }
  $('columns').hidden = false;
}

/** Reads a dropped or chosen file; a file that cannot be a dataset is reported here, before any training. */
async function takeDataFile(file: File): Promise<void> {
  dataFile = undefined;
  $('columns').hidden = true;
  $('data-status').textContent = '';
  clearError();
  delete document.body.dataset.file;
  const pick = ++filePicks;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (pick !== filePicks) return; // a later file has taken over
    const parsed = new DatasetFile(file.name, bytes);
    fillColumnPicker(parsed);
    dataFile = parsed;
    describeData();
  } catch (e) {
    showError(e);
  } finally {
    // The file has been read and judged (for scripts and tests driving the page).
    document.body.dataset.file = file.name;
  }
}

/** The split sizes and labels of the chosen data and columns, or the reason they cannot train. */
function describeData(): void {
  try {
    const d = currentData();
    if (!d) return;
    const { train, validation, test } = d.dataset;
    $('data-status').textContent =
      `${d.name}: ${train.length} train / ${validation.length} validation / ${test.length} test; labels ${d.dataset.labels.join(', ')}`;
    clearError();
  } catch (e) {
    $('data-status').textContent = '';
    showError(e);
  }
}

/** The data to train on now; undefined while a file is still to be chosen. Throws what is wrong with the file or columns. */
function currentData(): PageDataset | undefined {
  if (dataChoice() === 'spam') return spam;
  if (!dataFile) return undefined;
  const text = ($('text-column') as HTMLSelectElement).value;
  const label = ($('label-column') as HTMLSelectElement).value;
  if (!text || !label)
    throw new DeltaTuneError(`${dataFile.name}: no ${!text ? 'text' : 'label'} column chosen`, 'pick the text and the label column');
  if (text === label)
    throw new DeltaTuneError(`${dataFile.name}: "${text}" is chosen as both the text and the label column`, 'pick two different columns');
  return dataFile.dataset(text, label);
}

// ---------------------------------------------------------------------------------------------
// Training

let runStartedAt = 0;

function startRun(): void {
  clearError();
  let request: TrainRequest;
  try {
    const data = currentData();
    if (!data)
      throw new DeltaTuneError(
        'no dataset chosen yet',
        dataChoice() === 'file' ? 'choose or drop a .csv or .jsonl file' : 'wait for the spam sample to load',
      );
    const settings: TrainSettings = readSettings();
    request = {
      type: 'train',
      backend: ($('backend') as HTMLSelectElement).value as BackendRequest,
      assetsBase: document.baseURI,
      model: modelSource(),
      datasetName: data.name,
      dataset: data.dataset,
      limits: readLimits(),
      ...(data.columns ? { columns: data.columns } : {}),
      methods: methods.choices(),
      settings,
    };
  } catch (e) {
    showError(e);
    return;
  }
  training = true;
  runStartedAt = performance.now();
  for (const id of ['train', 'download', 'try']) ($(id) as HTMLButtonElement).disabled = true;
  ($('stop') as HTMLButtonElement).disabled = false;
  $('prediction').replaceChildren();
  chart.reset();
  setProgress(0, 1, 'starting');
  try {
    workerFor(request.backend);
    send(request);
  } catch (e) {
    // Posting can fail (a model folder too large to copy): the run never started.
    showError(e);
    finishRun(false);
  }
}

function finishRun(succeeded: boolean): void {
  training = false;
  ($('train') as HTMLButtonElement).disabled = false;
  ($('stop') as HTMLButtonElement).disabled = true;
  // Only a finished run can be tried or downloaded: a failed one left nothing behind in the worker.
  for (const id of ['download', 'try']) ($(id) as HTMLButtonElement).disabled = !succeeded;
  document.body.dataset.state = succeeded ? 'trained' : 'failed';
}

function setProgress(done: number, total: number, text: string): void {
  const bar = $('progress') as HTMLProgressElement;
  bar.max = Math.max(total, 1);
  bar.value = done;
  $('progress-text').textContent = text;
}

function addResultRow(s: RunSummary): void {
  const row = document.createElement('tr');
  const cells = [
    s.methods + (s.stopped ? ` (stopped at step ${s.steps} of ${s.plannedSteps})` : ''),
    s.trainableParameters.toLocaleString('en-US'),
    s.trainablePercent.toFixed(3),
    s.accuracy.toFixed(4),
    s.macroF1.toFixed(4),
    String(s.testExamples),
    String(s.steps),
    s.msPerStep.toFixed(0),
    s.backend,
    formatSeconds(s.seconds),
  ];
  for (const c of cells) row.append(Object.assign(document.createElement('td'), { textContent: c }));
  row.dataset.summary = JSON.stringify(s);
  $('results').querySelector('tbody')!.append(row);
}

let currentPhase = '';

function onWorkerMessage(m: WorkerToPage): void {
  switch (m.type) {
    case 'backend':
      $('backend-status').textContent = `backend: ${m.detail}`;
      document.body.dataset.backend = m.name;
      break;
    case 'phase':
      currentPhase = m.name;
      setProgress(0, 1, m.detail ? `${m.name}: ${m.detail}` : m.name);
      break;
    case 'progress':
      setProgress(m.done, m.total, `${currentPhase}: ${m.done} / ${m.total}`);
      break;
    case 'step':
      chart.addLoss(m.step, m.loss);
      setProgress(m.step, m.total, `step ${m.step} / ${m.total} · loss ${m.loss.toFixed(4)} · ETA ${formatSeconds(m.etaSeconds)}`);
      break;
    case 'eval':
      chart.addAccuracy(m.step, m.accuracy);
      break;
    case 'done': {
      trainedLabels = m.labels;
      addResultRow(m.summary);
      setProgress(
        1,
        1,
        `done in ${formatSeconds((performance.now() - runStartedAt) / 1000)}: test accuracy ${m.summary.accuracy.toFixed(4)}`,
      );
      const folder = m.summary.methods === 'head only' ? 'head' : m.summary.methods.includes(' + ') ? 'deltas' : 'delta';
      const data =
        document.querySelector<HTMLInputElement>('input[name=data]:checked')!.value === 'file'
          ? ` --dataset ${dataFile?.name ?? 'your-file.csv'}`
          : '';
      const model = modelChoice() === 'folder' ? ` --model path/to/${folderSource?.kind === 'folder' ? folderSource.name : 'model'}` : '';
      $('eval-command').textContent = `npx deltatune eval --delta ${folder}${model}${data}`;
      finishRun(true);
      break;
    }
    case 'prediction':
      if (m.id === predictionId) showPrediction(m.probabilities); // a late answer to an older question is dropped
      break;
    case 'exported': {
      const url = URL.createObjectURL(new Blob([m.zip as BlobPart], { type: 'application/zip' }));
      const a = Object.assign(document.createElement('a'), { href: url, download: m.fileName });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      break;
    }
    case 'error':
      showError(m.message, m.fix);
      // Only a failed run ends the run; a failed prediction or download leaves it as it was.
      if (m.request === 'train' && training) finishRun(false);
      break;
  }
}

function showPrediction(probabilities: readonly number[]): void {
  const box = $('prediction');
  box.dataset.probabilities = JSON.stringify(probabilities);
  box.replaceChildren(
    ...probabilities.map((p, i) => {
      const line = document.createElement('div');
      const bar = Object.assign(document.createElement('span'), { className: 'bar' });
      bar.style.width = `${Math.round(p * 200)}px`;
      line.append(bar, `${trainedLabels[i] ?? i}: ${p.toFixed(4)}`);
      return line;
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Wiring

let predictionId = 0;
$('train').addEventListener('click', startRun);
$('stop').addEventListener('click', () => {
  if (!worker || !training) return;
  send({ type: 'stop' });
  ($('stop') as HTMLButtonElement).disabled = true;
  $('backend-status').textContent = 'stopping after the current step, then scoring the test split';
});
$('try').addEventListener('click', () => {
  const text = ($('try-text') as HTMLTextAreaElement).value;
  if (!text.trim()) return showError('there is no text to classify', 'type a text in the box');
  clearError();
  send({ type: 'predict', id: ++predictionId, text });
});
$('download').addEventListener('click', () => send({ type: 'export' }));

for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=model]')) {
  radio.addEventListener('change', () => {
    $('model-folder').hidden = modelChoice() !== 'folder';
  });
}
$('model-folder').addEventListener('change', () => {
  const files = ($('model-folder') as HTMLInputElement).files;
  if (files?.length) readModelFolder(files).then(clearError, showError);
});
for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=data]')) {
  radio.addEventListener('change', () => {
    $('drop').hidden = dataChoice() !== 'file';
    $('columns').hidden = dataChoice() !== 'file' || !dataFile;
    $('data-status').textContent = '';
    describeData();
  });
}
$('data-file').addEventListener('change', () => {
  const input = $('data-file') as HTMLInputElement;
  const file = input.files?.[0];
  if (file) void takeDataFile(file).finally(() => (input.value = ''));
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const file = e.dataTransfer?.files[0];
  if (file) void takeDataFile(file);
});
for (const id of ['text-column', 'label-column']) $(id).addEventListener('change', describeData);

spamSample().then(
  (d) => {
    spam = d;
    describeData();
    document.body.dataset.ready = 'true';
  },
  (e) => showError(e),
);
