import {
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { HubApiError, modelInfo } from '@huggingface/hub';
import { DeltaTuneError } from '@deltatune/core';

// Hugging Face hub model ids (`--model owner/name[@revision]`), resolved through the cache Python's
// huggingface_hub keeps (models--owner--name/{blobs,refs,snapshots}), so both share downloads.
//
// @huggingface/hub answers the revision and its file list; the files we fetch ourselves: its
// downloadFileToCacheDir neither resumes (it truncates blobs/<etag>.incomplete) nor reports
// progress, and files the snapshot under each file's last commit rather than the repo's, a layout
// Python would not find.

export interface ResolveModelOptions {
  /** Bytes of one file so far; the first call of a resumed download carries what was already there. */
  readonly onProgress?: (file: string, done: number, total: number) => void;
  /** A branch, tag or commit; `owner/name@revision` says the same. Default `main`. */
  readonly revision?: string;
  /** The hub to ask; default `HF_ENDPOINT`, else https://huggingface.co. */
  readonly hubUrl?: string;
  readonly fetch?: typeof fetch;
}

/** The files besides the weights a model folder may use; those the repo lacks are skipped. */
const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  // Newer transformers saves the chat template here instead of in tokenizer_config.json.
  'chat_template.jinja',
];
const WEIGHTS = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
const COMMIT = /^[0-9a-f]{40}$/;
// The hub's own rule for a name (huggingface_hub's validate_repo_id): word characters, '-', '.',
// starting and ending with a word character, at most 96, neither '--' nor '..'.
const PART = String.raw`\w(?:[\w.-]{0,94}\w)?`;
const HUB_ID = new RegExp(String.raw`^${PART}/${PART}(?:@[^\s@]+)?$`);

/** `owner/name` or `owner/name@revision` that is not a path on disk (`use-lite` has no slash: never one). */
export function isHubModelId(model: string): boolean {
  return HUB_ID.test(model) && !/--|\.\./.test(model.split('@')[0]) && !existsSync(model);
}

/**
 * A folder to load `model` from: a local path as it is; a hub id as its snapshot folder in the
 * Hugging Face cache, after downloading what the cache lacks (config, tokenizer, generation config,
 * safetensors weights and every shard). `HF_HUB_OFFLINE=1` uses the cache only.
 */
export async function resolveModelDir(model: string, o: ResolveModelOptions = {}): Promise<string> {
  if (!isHubModelId(model)) return model;
  const [repo, idRevision] = model.split('@');
  if (idRevision && o.revision && idRevision !== o.revision)
    throw new DeltaTuneError(
      `${model} asks for revision ${idRevision}, but revision ${o.revision} was given too`,
      'give the revision once',
    );
  const revision = idRevision ?? o.revision ?? 'main';
  const storage = join(hubCacheDir(), `models--${repo.replace('/', '--')}`);
  if (offline()) return cachedSnapshot(model, storage, revision);
  // A commit never changes: once its snapshot holds the weights there is nothing to ask the hub.
  if (COMMIT.test(revision) && !missingFrom(join(storage, 'snapshots', revision))) return join(storage, 'snapshots', revision);

  const hubUrl = (o.hubUrl || process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  const token = hubToken();
  const ctx: Download = { model, repo, revision, hubUrl, token, storage, sha: '', fetch: o.fetch ?? fetch, onProgress: o.onProgress };
  const info = await repoInfo(ctx);
  ctx.sha = info.sha;
  const files = new Set(info.files);
  if (!files.has('config.json'))
    throw new DeltaTuneError(
      `${model} has no config.json: not a transformers model repository`,
      'pick a model repository with config.json and model.safetensors',
    );
  const weights = files.has(WEIGHTS) ? WEIGHTS : files.has(INDEX) ? INDEX : undefined;
  if (!weights) {
    throw new DeltaTuneError(
      `${model} has no safetensors weights (neither ${WEIGHTS} nor ${INDEX}; PyTorch .bin files are not read)`,
      'pick a repository that has safetensors weights, or convert this one (`save_pretrained(..., safe_serialization=True)`) and point --model at the folder',
    );
  }
  const snapshot = join(storage, 'snapshots', ctx.sha);
  for (const file of [...MODEL_FILES.filter((f) => files.has(f)), weights]) await ensureFile(ctx, file);
  if (weights === INDEX) {
    for (const shard of shardsOf(join(snapshot, INDEX))) {
      if (!files.has(shard))
        throw new DeltaTuneError(
          `${model}: shard ${shard} named in ${INDEX} is not in the repository`,
          'report it to the repository owner',
        );
      await ensureFile(ctx, shard);
    }
  }
  // Written last, so an offline run never finds a ref to a snapshot still being filled.
  if (revision !== ctx.sha) writeAtomic(join(storage, 'refs', revision), ctx.sha);
  return snapshot;
}

interface Download {
  readonly model: string;
  readonly repo: string;
  readonly revision: string;
  readonly hubUrl: string;
  readonly token?: string;
  readonly storage: string;
  sha: string;
  readonly fetch: typeof fetch;
  readonly onProgress?: ResolveModelOptions['onProgress'];
}

/** Python's cache folder: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
function hubCacheDir(): string {
  return expandUser(process.env.HF_HUB_CACHE || process.env.HUGGINGFACE_HUB_CACHE || join(hfHome(), 'hub'));
}

function hfHome(): string {
  return expandUser(process.env.HF_HOME || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface'));
}

function expandUser(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** As Python reads HF_HUB_OFFLINE (TRANSFORMERS_OFFLINE too). */
function offline(): boolean {
  return /^(1|on|yes|true)$/i.test((process.env.HF_HUB_OFFLINE || process.env.TRANSFORMERS_OFFLINE || '').trim());
}

/** HF_TOKEN, else the token `hf auth login` saved (HF_TOKEN_PATH, else HF_HOME/token), as Python looks. */
function hubToken(): string | undefined {
  const env = (process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || '').trim();
  let token = env;
  if (!token) {
    try {
      token = readFileSync(expandUser(process.env.HF_TOKEN_PATH || join(hfHome(), 'token')), 'utf8').trim();
    } catch {
      return undefined;
    }
  }
  // @huggingface/hub refuses any other token with a TypeError; say so as ours.
  if (token && !token.startsWith('hf_')) {
    throw new DeltaTuneError(
      `${env ? 'HF_TOKEN' : 'the saved Hugging Face token'} is not an access token (they start with "hf_")`,
      'set HF_TOKEN to a token from https://huggingface.co/settings/tokens',
    );
  }
  return token || undefined;
}

function cachedSnapshot(model: string, storage: string, revision: string): string {
  const commit = COMMIT.test(revision) ? revision : readRef(storage, revision);
  const snapshot = commit && join(storage, 'snapshots', commit);
  const missing = snapshot ? missingFrom(snapshot) : undefined;
  if (!snapshot || missing) {
    throw new DeltaTuneError(
      `HF_HUB_OFFLINE=1 and ${model} is not in the cache at ${storage}` + (missing ? ` (${snapshot} lacks ${missing})` : ''),
      'run once online (without HF_HUB_OFFLINE) to download it, or point --model at a local model folder',
    );
  }
  return snapshot;
}

function readRef(storage: string, revision: string): string | undefined {
  try {
    return readFileSync(join(storage, 'refs', revision), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The first file a snapshot needs and lacks: config.json, the weights, a shard; undefined when complete. */
function missingFrom(snapshot: string): string | undefined {
  if (!existsSync(join(snapshot, 'config.json'))) return 'config.json';
  if (existsSync(join(snapshot, WEIGHTS))) return undefined;
  if (!existsSync(join(snapshot, INDEX))) return WEIGHTS;
  try {
    return shardsOf(join(snapshot, INDEX)).find((shard) => !existsSync(join(snapshot, shard)));
  } catch {
    return INDEX;
  }
}

function shardsOf(indexPath: string): string[] {
  let index: { weight_map?: Record<string, string> };
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new DeltaTuneError(`${indexPath} is not valid JSON (${(e as Error).message})`, 'delete it and run again to download it anew');
  }
  const shards = [...new Set(Object.values(index.weight_map ?? {}))];
  for (const shard of shards) checkRelative(shard, indexPath);
  return shards;
}

/** A shard name from a downloaded index becomes a path: keep it inside the snapshot. */
function checkRelative(file: string, source: string): void {
  if (isAbsolute(file) || file.split(/[\\/]/).includes('..'))
    throw new DeltaTuneError(
      `${source} names the file "${file}", outside the model folder`,
      'use a repository whose index names its shards plainly',
    );
}

async function repoInfo(ctx: Download): Promise<{ sha: string; files: string[] }> {
  try {
    const info = await modelInfo({
      name: ctx.repo,
      revision: ctx.revision,
      hubUrl: ctx.hubUrl,
      accessToken: ctx.token,
      fetch: ctx.fetch,
      additionalFields: ['sha', 'filePaths'],
    });
    if (typeof info.sha !== 'string' || !COMMIT.test(info.sha))
      throw new DeltaTuneError(`${ctx.hubUrl} gave no commit for ${ctx.model}`, 'check HF_ENDPOINT points at a Hugging Face hub');
    return { sha: info.sha, files: info.filePaths ?? [] };
  } catch (e) {
    if (e instanceof HubApiError) throw httpError(ctx, e.statusCode);
    if (e instanceof DeltaTuneError) throw e;
    throw unreachable(ctx, e);
  }
}

/** snapshots/<commit>/<file> present (zero requests when it is), else fetched into blobs/<etag> and linked. */
async function ensureFile(ctx: Download, file: string): Promise<void> {
  checkRelative(file, ctx.model);
  const pointer = join(ctx.storage, 'snapshots', ctx.sha, file);
  if (existsSync(pointer)) return;
  const meta = await fileMetadata(ctx, file);
  const blob = join(ctx.storage, 'blobs', meta.etag);
  if (!existsSync(blob)) await downloadBlob(ctx, file, meta, blob);
  link(blob, pointer);
}

interface FileMeta {
  readonly etag: string;
  readonly size?: number;
  readonly url: string;
}

/**
 * What Python's get_hf_file_metadata reads: a HEAD of resolve/<commit>/<file>, redirects not
 * followed, since an LFS file answers 302 to its CDN with its etag (sha256) and size in
 * X-Linked-Etag / X-Linked-Size; only a relative redirect (a renamed repository) is followed.
 */
async function fileMetadata(ctx: Download, file: string): Promise<FileMeta> {
  let url = `${ctx.hubUrl}/${ctx.repo}/resolve/${ctx.sha}/${file.split('/').map(encodeURIComponent).join('/')}`;
  for (let hops = 0; ; hops++) {
    const res = await request(ctx, url, { method: 'HEAD', redirect: 'manual', headers: headers(ctx, url) });
    const location = res.headers.get('location');
    const redirect = res.status >= 300 && res.status < 400 && location;
    if (redirect && !/^[a-z][a-z0-9+.-]*:/i.test(location) && hops < 10) {
      url = new URL(location, url).href;
      continue;
    }
    if (!redirect && !res.ok) throw httpError(ctx, res.status, file);
    const etag = (res.headers.get('x-linked-etag') ?? res.headers.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '');
    if (!/^[\w.-]+$/.test(etag))
      throw new DeltaTuneError(
        `${ctx.hubUrl} gave no usable ETag for ${ctx.model}/${file}`,
        'check HF_ENDPOINT points at a Hugging Face hub',
      );
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length') ?? NaN);
    return { etag, size: Number.isFinite(size) ? size : undefined, url: redirect ? new URL(location, url).href : url };
  }
}

/**
 * Downloads into blobs/<etag>.incomplete and renames it when whole, as Python does: a partial file
 * never has the final name, and the next run continues it with a Range request.
 */
async function downloadBlob(ctx: Download, file: string, meta: FileMeta, blob: string): Promise<void> {
  mkdirSync(dirname(blob), { recursive: true });
  const part = `${blob}.incomplete`;
  let have = existsSync(part) ? statSync(part).size : 0;
  if (meta.size === undefined || have > meta.size) have = 0;
  if (meta.size === undefined || have < meta.size) {
    const res = await request(ctx, meta.url, { headers: { ...headers(ctx, meta.url), ...(have ? { Range: `bytes=${have}-` } : {}) } });
    if (!res.ok || !res.body) throw httpError(ctx, res.status, file);
    if (res.status !== 206) have = 0; // the server ignored the range: start over
    let done = have;
    const total = meta.size ?? Number(res.headers.get('content-length') ?? 0) + have;
    ctx.onProgress?.(file, done, total);
    const out = createWriteStream(part, { flags: have ? 'a' : 'w' });
    try {
      await pipeline(
        Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>),
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            done += chunk.length;
            ctx.onProgress?.(file, done, total);
            yield chunk;
          }
        },
        out,
      );
    } catch (e) {
      // pipeline rejects while a write may still be in flight; measured before it lands, the part
      // would grow behind our back and the next run's Range (or append) would double its tail.
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      const size = existsSync(part) ? statSync(part).size : 0;
      throw new DeltaTuneError(
        `the download of ${ctx.model}/${file} stopped at ${size} of ${total} bytes (${reason(e)})`,
        `run the same command again: it continues from byte ${size}; or set HF_HUB_OFFLINE=1 to use the cache, or point --model at a local folder`,
      );
    }
  }
  const size = statSync(part).size;
  if (meta.size !== undefined && size !== meta.size) {
    // Short: the body ended early, keep it to continue; long: it cannot be this file.
    if (size > meta.size) rmSync(part, { force: true });
    throw new DeltaTuneError(
      `${ctx.model}/${file} arrived with ${size} bytes, the hub said ${meta.size}`,
      'run the same command again' + (size < meta.size ? ': it continues from there' : ''),
    );
  }
  renameSync(part, blob);
}

/** snapshots/<commit>/<file> -> ../../blobs/<etag>, relative as Python links it; a copy where links fail (Windows without developer mode). */
function link(blob: string, pointer: string): void {
  mkdirSync(dirname(pointer), { recursive: true });
  const tmp = `${pointer}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  try {
    symlinkSync(relative(dirname(pointer), blob), tmp);
  } catch {
    copyFileSync(blob, tmp);
  }
  renameSync(tmp, pointer);
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** The token goes to the hub only, never to the CDN a file redirects to (its URL is signed already). */
function headers(ctx: Download, url: string): Record<string, string> {
  const toHub = new URL(url).origin === new URL(ctx.hubUrl).origin;
  // identity: Content-Length must be the file's size, not a compressed body's.
  return { 'Accept-Encoding': 'identity', ...(toHub && ctx.token ? { Authorization: `Bearer ${ctx.token}` } : {}) };
}

async function request(ctx: Download, url: string, init: RequestInit): Promise<Response> {
  try {
    return await ctx.fetch(url, init);
  } catch (e) {
    throw unreachable(ctx, e);
  }
}

function reason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e);
}

function unreachable(ctx: Download, e: unknown): DeltaTuneError {
  return new DeltaTuneError(
    `cannot reach the Hugging Face hub at ${ctx.hubUrl} for ${ctx.model} (${reason(e)})`,
    'check the network (HF_ENDPOINT sets another hub), set HF_HUB_OFFLINE=1 to use what is cached, or point --model at a local model folder',
  );
}

/** `file` absent: the answer to the revision info, which speaks for the repository. */
function httpError(ctx: Download, status: number, file?: string): DeltaTuneError {
  const page = `${ctx.hubUrl}/${ctx.repo}`;
  if (status === 401) {
    return new DeltaTuneError(
      ctx.token
        ? `${ctx.model}: the hub refused the token (401): it is invalid or expired, or the repository does not exist`
        : `${ctx.model}: the hub wants a token (401): the model is gated or private, or does not exist`,
      `set HF_TOKEN to an access token from https://huggingface.co/settings/tokens (for a gated model, accept its terms at ${page} first); check the id's spelling`,
    );
  }
  if (status === 403) {
    return new DeltaTuneError(
      `${ctx.model}: the token has no access (403): the model is gated and its terms are not accepted, or the token cannot read it`,
      `accept the terms at ${page} with the account of the token, or set HF_TOKEN to a token that can read it`,
    );
  }
  if (status === 404 && file) {
    return new DeltaTuneError(
      `${ctx.model}: ${file} is listed but not found at commit ${ctx.sha} (404)`,
      'run again (the repository may have changed meanwhile), or download the folder another way and point --model at it',
    );
  }
  if (status === 404) {
    return new DeltaTuneError(
      `${ctx.model}: not found on ${ctx.hubUrl} (no such repository${ctx.revision === 'main' ? '' : ` or revision "${ctx.revision}"`}), and no local folder has that name`,
      `check the id (owner/name, as in ${page}); for a local folder, check the path`,
    );
  }
  return new DeltaTuneError(
    `${ctx.hubUrl} answered ${status} for ${file ? `${ctx.model}/${file}` : `the revision info of ${ctx.model}`}`,
    'try again later; set HF_HUB_OFFLINE=1 to use what is cached, or point --model at a local model folder',
  );
}
