import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { DeltaTuneError, readSafetensors, writeSafetensors } from '@deltatune/core';
import { isHubModelId, loadHuggingFaceFolder, resolveModelDir } from '../src/node';
import { LLM_FIXTURES } from '../../../test-llm';

/**
 * Hub model ids against a fake hub on 127.0.0.1 that answers as huggingface.co does: the revision
 * info @huggingface/hub's modelInfo asks for (sha + siblings), HEAD/GET resolve/<rev>/<file> with
 * X-Repo-Commit and a quoted git-oid ETag, LFS files (*.safetensors) as a 302 to a CDN on another
 * origin with X-Linked-Etag (sha256) and X-Linked-Size, and the CDN serving Range requests with 206.
 */
const QWEN2 = `${LLM_FIXTURES}qwen2`;
const SHA = 'a'.repeat(40);
const SHARDED_SHA = 'b'.repeat(40);

interface Repo {
  readonly sha: string;
  readonly files: Map<string, Buffer>;
}
interface Seen {
  readonly server: 'hub' | 'cdn';
  readonly method: string;
  readonly path: string;
  readonly range?: string;
  readonly auth?: string;
}
interface FakeHub {
  readonly url: string;
  readonly seen: Seen[];
  /** Requests for file contents or metadata (resolve and CDN), not the revision info. */
  fileRequests(): Seen[];
  /** Cut the next CDN download of this blob off halfway (once). */
  dropHalfway?: string;
  /** Only this bearer token may read. */
  token?: string;
  close(): Promise<void>;
}

const isLfs = (file: string) => file.endsWith('.safetensors');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

function folderRepo(dir: string, sha: string): Repo {
  return { sha, files: new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))])) };
}

/** qwen2 with its tensors split over two shards and an index, as save_pretrained(max_shard_size=...) writes. */
function shardedRepo(): Repo {
  const { tensors } = readSafetensors(readFileSync(join(QWEN2, 'model.safetensors')));
  const names = [...tensors.keys()].sort();
  const half = Math.ceil(names.length / 2);
  const shardNames = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const files = new Map<string, Buffer>();
  const weightMap: Record<string, string> = {};
  [names.slice(0, half), names.slice(half)].forEach((part, i) => {
    files.set(shardNames[i], Buffer.from(writeSafetensors(new Map(part.map((n) => [n, tensors.get(n)!])), { format: 'pt' })));
    for (const n of part) weightMap[n] = shardNames[i];
  });
  files.set('model.safetensors.index.json', Buffer.from(JSON.stringify({ metadata: {}, weight_map: weightMap })));
  for (const f of ['config.json', 'generation_config.json']) files.set(f, readFileSync(join(QWEN2, f)));
  return { sha: SHARDED_SHA, files };
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<[Server, string]> {
  const server = createServer(handler);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return [server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`];
}

async function fakeHub(repos: Record<string, Repo>): Promise<FakeHub> {
  const seen: Seen[] = [];
  const blobs = new Map<string, Buffer>();
  for (const repo of Object.values(repos)) for (const b of repo.files.values()) blobs.set(sha256(b), b);
  const record = (server: Seen['server'], req: IncomingMessage) =>
    seen.push({ server, method: req.method!, path: req.url!, range: req.headers.range, auth: req.headers.authorization });

  const [cdn, cdnUrl] = await listen((req, res) => {
    record('cdn', req);
    const hash = /^\/blobs\/([0-9a-f]{64})$/.exec(req.url!)?.[1];
    const body = hash && blobs.get(hash);
    if (!body) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const head = { ETag: `"${hash}"`, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
    if (range) {
      if (start >= body.length) return void res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
      res.writeHead(206, {
        ...head,
        'Content-Length': body.length - start,
        'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
    } else {
      res.writeHead(200, { ...head, 'Content-Length': body.length });
    }
    if (hub.dropHalfway === hash && !range) {
      hub.dropHalfway = undefined;
      // Half the promised bytes, then the connection goes: what a dropped Wi-Fi looks like.
      res.write(body.subarray(0, body.length >> 1), () => res.socket!.destroy());
      return;
    }
    res.end(req.method === 'HEAD' ? undefined : body.subarray(start));
  });

  const [server, url] = await listen((req, res) => {
    record('hub', req);
    const json = (status: number, data: unknown, extra: Record<string, string> = {}) =>
      void res.writeHead(status, { 'Content-Type': 'application/json', ...extra }).end(JSON.stringify(data));
    if (hub.token && req.headers.authorization !== `Bearer ${hub.token}`)
      return json(
        401,
        { error: 'Access to model is restricted. You must be authenticated to access it.' },
        { 'X-Error-Code': 'GatedRepo' },
      );
    const path = new URL(req.url!, url).pathname;
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repoName = api?.[1] ?? resolve?.[1];
    const repo = repoName ? repos[repoName] : undefined;
    if (!repo) return json(404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
    const rev = decodeURIComponent((api ?? resolve)![2]);
    if (rev !== 'main' && rev !== repo.sha) return json(404, { error: `Invalid rev id: ${rev}` }, { 'X-Error-Code': 'RevisionNotFound' });
    if (api) {
      return json(200, {
        _id: 'x',
        id: repoName,
        sha: repo.sha,
        private: false,
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: '2025-01-01T00:00:00.000Z',
        siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    const file = decodeURIComponent(resolve![3]);
    const body = repo.files.get(file);
    if (!body) return json(404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
    const common = { 'X-Repo-Commit': repo.sha, 'Accept-Ranges': 'bytes' };
    if (isLfs(file)) {
      const hash = sha256(body);
      return void res
        .writeHead(302, {
          ...common,
          Location: `${cdnUrl}/blobs/${hash}`,
          'X-Linked-Etag': `"${hash}"`,
          'X-Linked-Size': String(body.length),
          ETag: `"${gitOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${hash}\n`))}"`,
        })
        .end();
    }
    res.writeHead(200, { ...common, ETag: `"${gitOid(body)}"`, 'Content-Length': body.length, 'Content-Type': 'application/json' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });

  const hub: FakeHub = {
    url,
    seen,
    fileRequests: () => seen.filter((s) => s.server === 'cdn' || s.path.includes('/resolve/')),
    close: async () => {
      await Promise.all([server, cdn].map((s) => new Promise((done) => (s.closeAllConnections(), s.close(done)))));
    },
  };
  return hub;
}

const ENV = ['HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'XDG_CACHE_HOME', 'HF_ENDPOINT', 'HF_TOKEN'];
const ENV_TOO = ['HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'];
let saved: Record<string, string | undefined>;
let home: string;
let hub: FakeHub;

beforeEach(async () => {
  saved = Object.fromEntries([...ENV, ...ENV_TOO].map((k) => [k, process.env[k]]));
  for (const k of [...ENV, ...ENV_TOO]) delete process.env[k];
  // Never the user's real cache or token.
  home = mkdtempSync(join(tmpdir(), 'deltatune-hf-'));
  process.env.HF_HOME = home;
  hub = await fakeHub({ 'tiny/qwen2': folderRepo(QWEN2, SHA), 'tiny/sharded': shardedRepo() });
  process.env.HF_ENDPOINT = hub.url;
});

afterEach(async () => {
  await hub.close();
  rmSync(home, { recursive: true, force: true });
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const storage = (repo: string) => join(home, 'hub', `models--${repo.replace('/', '--')}`);

function logits(dir: string): number[][][] {
  const model = loadHuggingFaceFolder(dir);
  const out = tf.tidy(() => {
    const inputIds = tf.tensor2d([[1, 5, 9, 20, 7]], undefined, 'int32');
    return model.forward({ inputIds, attentionMask: tf.onesLike(inputIds) }).logits!.arraySync();
  });
  model.dispose();
  return out as number[][][];
}

async function rejection(p: Promise<unknown>): Promise<DeltaTuneError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DeltaTuneError);
  return e as DeltaTuneError;
}

describe('resolveModelDir with a hub id', () => {
  it("downloads into Python huggingface_hub's layout: blobs by etag, refs/main, snapshots/<commit> links", async () => {
    const dir = await resolveModelDir('tiny/qwen2');
    const root = storage('tiny/qwen2');
    expect(dir).toBe(join(root, 'snapshots', SHA));
    expect(readFileSync(join(root, 'refs', 'main'), 'utf8')).toBe(SHA);
    const files = ['config.json', 'generation_config.json', 'model.safetensors'];
    expect(readdirSync(dir).sort()).toEqual(files);
    for (const f of files) {
      const bytes = readFileSync(join(QWEN2, f));
      // LFS files are stored under their sha256, the others under their git blob id, as Python names them.
      const etag = isLfs(f) ? sha256(bytes) : gitOid(bytes);
      expect(readlinkSync(join(dir, f))).toBe(`../../blobs/${etag}`);
      expect(lstatSync(join(dir, f)).isSymbolicLink()).toBe(true);
      expect(readFileSync(join(root, 'blobs', etag)).equals(bytes)).toBe(true);
    }
    expect(readdirSync(join(root, 'blobs')).filter((b) => b.endsWith('.incomplete'))).toEqual([]);
    // The repo was listed first, and files it lacks (tokenizer.json...) were never asked for.
    expect(hub.seen[0].path).toMatch(/^\/api\/models\/tiny\/qwen2\/revision\/main\?/);
    expect(hub.seen[0].path).toContain('expand=siblings');
    expect(hub.fileRequests().some((s) => s.path.includes('tokenizer'))).toBe(false);
    // Files at the listed commit, not at whatever main is by then.
    for (const s of hub.seen.filter((s) => s.path.includes('/resolve/'))) expect(s.path).toContain(`/resolve/${SHA}/`);
  });

  it('the resolved folder loads the same model as the fixture folder: equal logits', async () => {
    const dir = await resolveModelDir('tiny/qwen2', { hubUrl: hub.url });
    expect(logits(dir)).toEqual(logits(QWEN2));
  });

  it('a second resolve asks for no file (one revision request only), and a pinned cached commit asks nothing', async () => {
    await resolveModelDir('tiny/qwen2');
    const before = hub.seen.length;
    expect(await resolveModelDir('tiny/qwen2')).toBe(join(storage('tiny/qwen2'), 'snapshots', SHA));
    const again = hub.seen.slice(before);
    expect(again.map((s) => s.path.split('?')[0])).toEqual(['/api/models/tiny/qwen2/revision/main']);
    const n = hub.seen.length;
    expect(await resolveModelDir(`tiny/qwen2@${SHA}`)).toBe(join(storage('tiny/qwen2'), 'snapshots', SHA));
    expect(hub.seen.length).toBe(n);
  });

  it('HF_HUB_OFFLINE=1 resolves from the cache without the network, and fails clearly when nothing is cached', async () => {
    const dir = await resolveModelDir('tiny/qwen2');
    process.env.HF_HUB_OFFLINE = '1';
    const noNetwork = (() => {
      throw new Error('network used offline');
    }) as unknown as typeof fetch;
    const before = hub.seen.length;
    expect(await resolveModelDir('tiny/qwen2', { fetch: noNetwork })).toBe(dir);
    expect(hub.seen.length).toBe(before);
    const e = await rejection(resolveModelDir('tiny/sharded', { fetch: noNetwork }));
    expect(e.message).toContain(`HF_HUB_OFFLINE=1 and tiny/sharded is not in the cache at ${storage('tiny/sharded')}`);
    expect(e.fix).toMatch(/online.*local model folder/);
  });

  it('an interrupted download resumes with a Range request from where it stopped, byte-identical at the end', async () => {
    const weights = readFileSync(join(QWEN2, 'model.safetensors'));
    const etag = sha256(weights);
    const blob = join(storage('tiny/qwen2'), 'blobs', etag);
    hub.dropHalfway = etag;
    const first = await rejection(resolveModelDir('tiny/qwen2'));
    expect(first.message).toMatch(/download of tiny\/qwen2\/model\.safetensors stopped at \d+ of 181352 bytes/);
    expect(first.fix).toContain('run the same command again');
    // No partial file under a final name: neither the blob nor the snapshot link, nor refs/main.
    expect(existsSync(blob)).toBe(false);
    expect(existsSync(join(storage('tiny/qwen2'), 'snapshots', SHA, 'model.safetensors'))).toBe(false);
    expect(existsSync(join(storage('tiny/qwen2'), 'refs', 'main'))).toBe(false);
    const stopped = statSync(`${blob}.incomplete`).size;
    expect(stopped).toBeGreaterThan(0);
    expect(stopped).toBeLessThan(weights.length);

    const before = hub.seen.length;
    const progress: Array<[string, number, number]> = [];
    const dir = await resolveModelDir('tiny/qwen2', { onProgress: (f, done, total) => progress.push([f, done, total]) });
    const cdn = hub.seen.slice(before).filter((s) => s.server === 'cdn');
    expect(cdn).toEqual([expect.objectContaining({ method: 'GET', range: `bytes=${stopped}-` })]);
    // The files finished the first time are not asked for again.
    expect(
      hub.seen
        .slice(before)
        .filter((s) => s.path.includes('/resolve/'))
        .map((s) => s.path),
    ).toEqual([`/tiny/qwen2/resolve/${SHA}/model.safetensors`]);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weights)).toBe(true);
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
    expect(progress[0]).toEqual(['model.safetensors', stopped, weights.length]);
    expect(progress.at(-1)).toEqual(['model.safetensors', weights.length, weights.length]);
    expect(progress.every(([, done], i) => i === 0 || done >= progress[i - 1][1])).toBe(true);
  });

  it('HF_TOKEN goes to the hub as a bearer token, and never to the CDN', async () => {
    hub.token = 'hf_test_secret';
    process.env.HF_TOKEN = 'hf_test_secret';
    await resolveModelDir('tiny/qwen2');
    const hubRequests = hub.seen.filter((s) => s.server === 'hub');
    expect(hubRequests.length).toBeGreaterThan(3);
    for (const s of hubRequests) expect(s.auth).toBe('Bearer hf_test_secret');
    const cdn = hub.seen.filter((s) => s.server === 'cdn');
    expect(cdn.length).toBe(1);
    expect(cdn[0].auth).toBeUndefined();
  });

  it('the token `hf auth login` saved (HF_HOME/token) is used when HF_TOKEN is unset', async () => {
    hub.token = 'hf_saved';
    writeFileSync(join(home, 'token'), 'hf_saved\n');
    await resolveModelDir('tiny/qwen2');
    expect(hub.seen[0].auth).toBe('Bearer hf_saved');
  });

  it('401 (gated or private, no token) says to set HF_TOKEN', async () => {
    hub.token = 'hf_test_secret';
    const e = await rejection(resolveModelDir('tiny/qwen2'));
    expect(e.message).toContain('tiny/qwen2: the hub wants a token (401)');
    expect(e.fix).toContain('set HF_TOKEN');
    expect(existsSync(storage('tiny/qwen2'))).toBe(false);
  });

  it('404: an unknown repository or revision is named', async () => {
    const e = await rejection(resolveModelDir('tiny/nope'));
    expect(e.message).toContain(`tiny/nope: not found on ${hub.url} (no such repository)`);
    expect(e.fix).toContain('check the id');
    const r = await rejection(resolveModelDir('tiny/qwen2@v9'));
    expect(r.message).toContain('or revision "v9"');
  });

  it('a sharded repository downloads the index and every shard it names', async () => {
    const dir = await resolveModelDir('tiny/sharded');
    expect(readdirSync(dir).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(hub.seen.filter((s) => s.server === 'cdn').length).toBe(2);
    expect(logits(dir)).toEqual(logits(QWEN2));
  });

  it('a repository without safetensors weights is refused before anything is downloaded', async () => {
    await hub.close();
    hub = await fakeHub({
      'tiny/bin': {
        sha: SHA,
        files: new Map([
          ['config.json', Buffer.from('{}')],
          ['pytorch_model.bin', Buffer.alloc(8)],
        ]),
      },
    });
    process.env.HF_ENDPOINT = hub.url;
    const e = await rejection(resolveModelDir('tiny/bin'));
    expect(e.message).toContain('tiny/bin has no safetensors weights');
    expect(hub.fileRequests()).toEqual([]);
  });

  it('an unreachable hub names HF_HUB_OFFLINE and a local folder as ways out', async () => {
    // A fresh hub first, so the closed one's port is not handed out again meanwhile.
    const old = hub;
    hub = await fakeHub({});
    await old.close();
    const url = old.url;
    const e = await rejection(resolveModelDir('tiny/qwen2', { hubUrl: url }));
    expect(e.message).toContain(`cannot reach the Hugging Face hub at ${url}`);
    expect(e.fix).toMatch(/HF_HUB_OFFLINE=1.*local model folder/);
  });
});

describe('isHubModelId', () => {
  it('owner/name[@revision] is a hub id; use-lite, paths and existing folders are local', () => {
    expect(isHubModelId('HuggingFaceTB/SmolLM2-135M')).toBe(true);
    expect(isHubModelId('HuggingFaceTB/SmolLM2-135M@main')).toBe(true);
    expect(isHubModelId('Qwen/Qwen2.5-0.5B-Instruct')).toBe(true);
    for (const local of ['use-lite', './models/bert', '/abs/owner/name', 'a/b/c', 'owner/na--me', '~/x', QWEN2]) {
      expect(isHubModelId(local), local).toBe(false);
    }
    const cwd = process.cwd();
    const dir = mkdtempSync(join(tmpdir(), 'deltatune-cwd-'));
    try {
      process.chdir(dir);
      mkdirSync('owner/name', { recursive: true });
      expect(isHubModelId('owner/name')).toBe(false);
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resolveModelDir returns a local folder as it is, asking nothing', async () => {
    expect(await resolveModelDir(QWEN2)).toBe(QWEN2);
    expect(await resolveModelDir('use-lite')).toBe('use-lite');
    expect(hub.seen).toEqual([]);
  });
});
