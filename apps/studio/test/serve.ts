import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import type { AddressInfo } from 'node:net';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** A static server for a built page on 127.0.0.1 (a free port), optionally cross-origin isolated, logging what was fetched. */
export async function serveFolder(
  root: string,
  options: { isolated?: boolean; mounts?: Readonly<Record<string, string>> } = {},
): Promise<{ url: string; fetched: string[]; close(): Promise<void> }> {
  const fetched: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    // A mount serves another folder under a URL prefix (`/use-lite/` -> the npm package's dist).
    const mount = Object.keys(options.mounts ?? {}).find((prefix) => path.startsWith(prefix));
    const base = mount ? options.mounts![mount] : root;
    const rest = mount ? path.slice(mount.length) : path;
    const file = normalize(join(base, rest.endsWith('/') || rest === '' ? `${rest}index.html` : rest));
    if (!file.startsWith(normalize(base))) return void res.writeHead(403).end();
    try {
      const body = await readFile(file);
      fetched.push(path);
      const headers: Record<string, string> = { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' };
      if (options.isolated)
        Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
      res.writeHead(200, headers).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, fetched, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
