import { DeltaTuneError } from '@deltatune/core';
import { splitExamples, type SftDataset, type SftExample, type SftMessage } from '../../index';
import { datasetFileKind, kindOf, preview, readJsonl, readText, type SourceRecord } from './files';

const PROMPT_COMPLETION = '{"prompt": "...", "completion": "..."}';
const MESSAGES = '{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}';
const SHAPES = `${PROMPT_COMPLETION} or ${MESSAGES}`;

const an = (v: unknown) => (['array', 'object'].includes(kindOf(v)) ? 'an' : 'a');

/** One line as an example, or a DeltaTuneError naming `file:line`, what is wrong, and the fix. */
function sftExample(path: string, r: SourceRecord): SftExample {
  const at = `${path}:${r.line}`;
  const f = r.fields;
  const has = (k: string) => f[k] !== undefined;
  if (has('messages') && (has('prompt') || has('completion')))
    throw new DeltaTuneError(
      `${at}: the record has both "messages" and "prompt"/"completion", so which one to train on is unclear`,
      `keep one shape per line: ${SHAPES}`,
    );
  if (has('messages')) return { messages: messagesOf(at, r.line, f.messages), source: at };
  if (!has('prompt') || !has('completion')) {
    const missing = has('prompt') ? 'no "completion"' : has('completion') ? 'no "prompt"' : 'neither "prompt"/"completion" nor "messages"';
    throw new DeltaTuneError(
      `${at}: the record has ${missing} (has: ${Object.keys(f).join(', ') || 'no fields'})`,
      has('text') && !has('prompt') && !has('completion')
        ? `plain text trains with --task lm; for --task sft write each line as ${SHAPES}`
        : `write each line as ${SHAPES}, or delete line ${r.line}`,
    );
  }
  for (const key of ['prompt', 'completion'] as const) {
    const v = f[key];
    if (Array.isArray(v))
      throw new DeltaTuneError(
        `${at}: "${key}" is an array (a conversation), but prompt/completion records are plain text`,
        `write a conversation as ${MESSAGES}`,
      );
    if (typeof v !== 'string')
      throw new DeltaTuneError(
        `${at}: "${key}" is ${an(v)} ${kindOf(v)} (${preview(v)}), not a string`,
        `write the ${key} as a JSON string`,
      );
  }
  if ((f.completion as string).trim() === '')
    throw new DeltaTuneError(
      `${at}: "completion" is empty, so there is nothing to train on`,
      `give the record the text the model should answer with, or delete line ${r.line}`,
    );
  return { prompt: f.prompt as string, completion: f.completion as string, source: at };
}

function messagesOf(at: string, line: number, v: unknown): SftMessage[] {
  if (!Array.isArray(v) || v.length === 0)
    throw new DeltaTuneError(
      `${at}: "messages" is ${Array.isArray(v) ? 'an empty array' : `${an(v)} ${kindOf(v)} (${preview(v)})`}, not a list of turns`,
      `write the conversation as ${MESSAGES}`,
    );
  const messages = v.map((m: unknown, i): SftMessage => {
    const o = (m ?? {}) as Record<string, unknown>;
    if (kindOf(m) !== 'object' || typeof o.role !== 'string' || o.role === '')
      throw new DeltaTuneError(
        `${at}: message ${i + 1} is ${kindOf(m) === 'object' ? 'without a "role" string' : `${an(m)} ${kindOf(m)}`} (${preview(m)})`,
        'give every message a role ("system", "user", "assistant") and its "content" text',
      );
    if (typeof o.content !== 'string')
      throw new DeltaTuneError(
        `${at}: message ${i + 1} (${o.role}) has ${o.content === undefined ? 'no "content"' : `${an(o.content)} ${kindOf(o.content)} as "content"`}, not text`,
        'write each turn\'s "content" as one string (images, tool calls and content parts are not trained on)',
      );
    return { role: o.role, content: o.content };
  });
  const assistant = messages.findIndex((m) => m.role === 'assistant');
  if (assistant < 0)
    throw new DeltaTuneError(
      `${at}: the conversation has no assistant turn (roles: ${messages.map((m) => m.role).join(', ')}), so there is nothing to train on`,
      `add the reply the model should give as {"role": "assistant", "content": "..."}, or delete line ${line}`,
    );
  const empty = messages.findIndex((m) => m.role === 'assistant' && m.content.trim() === '');
  if (empty >= 0)
    throw new DeltaTuneError(
      `${at}: assistant message ${empty + 1} is empty, so there is nothing to train on in it`,
      "give each assistant turn its reply, or drop the turn (and the user's turn it answers)",
    );
  return messages;
}

/**
 * Instruction-tuning data (`task: 'sft'`): a `.jsonl` file, one example per line, either
 * `{"prompt": "...", "completion": "..."}` (plain text) or `{"messages": [{"role", "content"}...]}`
 * (rendered with the model's chat template; at least one assistant turn). Other fields are
 * ignored; both shapes may mix. Split as every file dataset is (`splitExamples`: fixed seed, 15%
 * test, 15% validation). Anything unusable is a DeltaTuneError naming `file:line`.
 */
export function loadSftFile(path: string): SftDataset {
  if (datasetFileKind(path) !== 'jsonl')
    throw new DeltaTuneError(
      `${path}: --task sft reads a .jsonl file (one ${PROMPT_COMPLETION} or {"messages": [...]} object per line), not CSV`,
      `convert it, e.g. with Python: pandas.read_csv(${JSON.stringify(path)}).to_json("data.jsonl", orient="records", lines=True) ` +
        `(columns named prompt and completion), then pass data.jsonl`,
    );
  const file = readJsonl(path, readText(path), PROMPT_COMPLETION);
  if (file.records.length === 0) throw new DeltaTuneError(`${path} has no records`, `add one JSON object per line: ${SHAPES}`);
  const examples = file.records.map((r) => sftExample(path, r));
  return splitExamples<SftExample>(path, [], examples, path);
}
