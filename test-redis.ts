// Test helper: a real redis-server on a free loopback port, for the queue tests (never a mock).
// Tests that need one skip when redis-server is not installed, unless DELTATUNE_REQUIRE_REDIS=1
// (set by .ci/run, which installs it with apt): then they fail, so a green CI means they ran.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Undefined when redis-server runs here, else why not (with DELTATUNE_REQUIRE_REDIS=1, throws instead). */
export function redisMissing(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const why = `redis-server is not installed (${r.error?.message ?? r.stderr})`;
  if (process.env.DELTATUNE_REQUIRE_REDIS === '1')
    throw new Error(
      `DELTATUNE_REQUIRE_REDIS=1, but ${why}\nfix: apt-get install redis-server, or unset DELTATUNE_REQUIRE_REDIS to let the queue tests skip`,
    );
  return why;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface RedisServer {
  readonly port: number;
  /** The URL to reach it: redis://127.0.0.1:PORT, or rediss:// with TLS. */
  readonly url: string;
  /** With TLS: the CA that signed the server's certificate (for NODE_EXTRA_CA_CERTS). */
  readonly caFile?: string;
  stop(): Promise<void>;
}

/** Starts redis-server in memory only (no dump, no AOF), optionally with a password or TLS, and waits until it answers. */
export async function startRedis(opts: { password?: string; tls?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'redis-'));
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  let caFile: string | undefined;
  if (opts.tls) {
    caFile = selfSignedCertificates(dir);
    args.push(
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--tls-cert-file',
      join(dir, 'server.pem'),
      '--tls-key-file',
      join(dir, 'server.key'),
    );
    args.push('--tls-ca-cert-file', caFile, '--tls-auth-clients', 'no');
  } else args.push('--port', String(port));
  if (opts.password) args.push('--requirepass', opts.password);
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start in 10 s:\n${log}`)), 10_000);
    const check = setInterval(() => {
      if (/Ready to accept connections/.test(log)) {
        clearInterval(check);
        clearTimeout(timer);
        resolve();
      }
    }, 20);
    child.on('exit', (code) => {
      clearInterval(check);
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${log}`));
    });
  });
  child.removeAllListeners('exit');
  const auth = opts.password ? `:${opts.password}@` : '';
  return {
    port,
    url: `${opts.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`,
    caFile,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** A CA and a server certificate for 127.0.0.1 signed by it, made with openssl; returns the CA's path. */
function selfSignedCertificates(dir: string): string {
  const run = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.error?.message ?? r.stderr}`);
  };
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=deltatune test CA',
  );
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
  return join(dir, 'ca.pem');
}
