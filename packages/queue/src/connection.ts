import { Redis } from 'ioredis';
import { DeltaTuneError } from '@deltatune/core';
import type { QueueUrl } from './queue-url';

/** BullMQ needs Redis 5 for its streams; this is the oldest its scripts are tested on that deltatune supports. */
const MIN_REDIS = [6, 2] as const;

/**
 * A connection to the queue's Redis, after one probe that fails fast with a message naming what is
 * wrong (nothing listening, wrong password, TLS mismatch, an old Redis). The connection returned then
 * retries on its own: a worker rides out a Redis restart instead of losing its cell.
 */
export async function openRedis(url: QueueUrl, name: string): Promise<Redis> {
  await probe(url);
  const redis = new Redis(url.href, {
    connectionName: name,
    // BullMQ's blocking commands need unlimited retries per request (it refuses a worker otherwise).
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(250 * times, 5000),
  });
  // ioredis reports a dropped connection as an 'error' event; the retry strategy handles it, and an
  // unheard 'error' event would end the process.
  redis.on('error', () => undefined);
  return redis;
}

async function probe(url: QueueUrl): Promise<void> {
  const redis = new Redis(url.href, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  redis.on('error', (e: Error) => (lastError = e));
  try {
    await redis.connect();
    await redis.ping();
    const info = await redis.info('server');
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < MIN_REDIS[0] || (Number(version[1]) === MIN_REDIS[0] && Number(version[2]) < MIN_REDIS[1])))
      throw new DeltaTuneError(
        `Redis at ${url.display} is version ${version[1]}.${version[2]}; the queue needs ${MIN_REDIS.join('.')} or newer`,
        'run a newer redis-server (Debian and Ubuntu ship 7.x: apt-get install redis-server)',
      );
  } catch (e) {
    if (e instanceof DeltaTuneError) throw e;
    throw unreachable(url, lastError ?? (e as Error));
  } finally {
    redis.disconnect();
  }
}

/** What went wrong reaching Redis, with the fix for that case. */
export function unreachable(url: QueueUrl, e: Error & { code?: string }): DeltaTuneError {
  const text = `${e.code ?? ''} ${e.message}`;
  const at = `Redis at ${url.display}`;
  if (/NOAUTH/.test(text))
    return new DeltaTuneError(
      `${at} needs a password`,
      `put it in the URL: --queue redis${url.tls ? 's' : ''}://:PASSWORD@${url.host}:${url.port}/${url.db}`,
    );
  if (/WRONGPASS|invalid password|invalid username-password/i.test(text))
    return new DeltaTuneError(
      `${at} refused the user name or password in the URL`,
      'check the password (redis-cli -a PASSWORD ping) and give it as redis://:PASSWORD@HOST:PORT',
    );
  if (/DB index is out of range|invalid DB index/i.test(text))
    return new DeltaTuneError(
      `${at} has no database ${url.db}`,
      `use a database number below the server's "databases" setting (16 by default), e.g. /0`,
    );
  if (/ENOTFOUND|EAI_AGAIN/.test(text))
    return new DeltaTuneError(
      `cannot reach ${at}: no host ${url.host} (${e.code})`,
      'check the host name in --queue, e.g. --queue redis://127.0.0.1:6379',
    );
  if (/self[- ]signed|unable to verify|UNABLE_TO_GET_ISSUER|CERT_|certificate/i.test(text))
    return new DeltaTuneError(
      `${at}: its TLS certificate is not trusted (${e.message})`,
      "point NODE_EXTRA_CA_CERTS at the CA that signed the server's certificate, e.g. NODE_EXTRA_CA_CERTS=ca.pem deltatune ...",
    );
  if (/ECONNREFUSED/.test(text))
    return new DeltaTuneError(
      `cannot reach ${at}: connection refused (nothing listens on ${url.host}:${url.port})`,
      `start Redis there (redis-server --port ${url.port}), or check the host and port in --queue`,
    );
  if (/ETIMEDOUT|timed? ?out/i.test(text))
    return url.tls
      ? new DeltaTuneError(
          `cannot reach ${at}: no answer to the TLS handshake within 5 s`,
          `the port may not speak TLS: try redis://${url.host}:${url.port}, or the server's tls-port; else check the host and a firewall`,
        )
      : new DeltaTuneError(
          `cannot reach ${at}: no answer within 5 s`,
          'check the host and port, and that a firewall lets the port through',
        );
  if (/ECONNRESET|socket hang up|Connection is closed|EPROTO|wrong version number|packet length/i.test(text))
    return new DeltaTuneError(
      `cannot reach ${at}: the connection closed during the handshake (${e.message})`,
      url.tls
        ? `the port may not speak TLS: try redis://${url.host}:${url.port}, or the server's tls-port`
        : `the port may expect TLS: try rediss://${url.host}:${url.port}`,
    );
  return new DeltaTuneError(
    `cannot reach ${at}: ${e.message}`,
    'check that redis-server runs there and --queue names it (redis-cli -u URL ping)',
  );
}
