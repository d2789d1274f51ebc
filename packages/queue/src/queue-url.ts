import { DeltaTuneError } from '@deltatune/core';

/** A `--queue` URL, checked: where Redis is, which database, TLS or not, and how to print it without its password. */
export interface QueueUrl {
  /** As given: ioredis reads host, port, user, password, database and `rediss:` TLS from it. */
  readonly href: string;
  /** The URL with its password replaced by `***`, for messages and logs. */
  readonly display: string;
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly tls: boolean;
}

const EXAMPLE = 'redis://127.0.0.1:6379 (or redis://:PASSWORD@HOST:6379/0, rediss://HOST:6380 for TLS)';

export function parseQueueUrl(text: string): QueueUrl {
  const bad = (what: string): never => {
    throw new DeltaTuneError(`--queue ${maskPassword(text)} ${what}`, `give a Redis URL, e.g. --queue ${EXAMPLE}`);
  };
  // HOST:PORT alone (as redis-cli takes it) parses as a URL of scheme "HOST:": say what to write.
  if (!text.includes('://') && /^[\w.-]+(:\d+)?(\/\d+)?$/.test(text))
    throw new DeltaTuneError(`--queue ${text} has no redis:// in front`, `write it as a URL: --queue redis://${text}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad('is not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') bad(`is a ${url.protocol.replace(/:$/, '')}: URL, not redis: or rediss:`);
  if (!url.hostname) bad('names no host');
  const port = url.port ? Number(url.port) : 6379;
  const path = url.pathname.replace(/^\/+/, '');
  if (path !== '' && !/^\d+$/.test(path)) bad(`has the path /${path}: the only path a Redis URL takes is a database number (/0 ... /15)`);
  const db = path === '' ? 0 : Number(path);
  const extra = [...url.searchParams.keys()];
  if (extra.length) bad(`has ${extra.map((k) => `?${k}`).join(', ')}, which deltatune does not read (TLS is rediss://, the database /N)`);
  return { href: url.href, display: maskPassword(url.href), host: url.hostname, port, db, tls: url.protocol === 'rediss:' };
}

/** The URL for printing: a password never reaches a terminal, a log or a results file. */
export function maskPassword(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
