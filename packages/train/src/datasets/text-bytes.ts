// A dataset file's bytes as text, strictly: the CLI (bytes read from disk) and a page (a dropped
// file's bytes) decode with this one function, so both refuse the same files with the same words.
import { DeltaTuneError } from '@deltatune/core';
import { convertedName, sh } from './file-names';

/** Offset of the first byte that is not part of a well-formed UTF-8 sequence (Unicode table 3-7), or -1. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      if (c === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}

function lineAt(b: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (b[i] === 0x0a) line++;
  return line;
}

/**
 * `bytes` as UTF-8 text, or a DeltaTuneError naming `name`: UTF-16 (a BOM), a byte that is not
 * UTF-8 (which byte, which line), a NUL byte (binary, or UTF-16 without a BOM). Decodes strictly:
 * lenient decoding turns every Latin-1 accent into U+FFFD, and the model then trains on the wrong
 * text without a word. A leading BOM is dropped.
 */
export function decodeDatasetText(bytes: Uint8Array, name: string): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new DeltaTuneError(
      `${name} is UTF-16 text, not UTF-8`,
      `convert it: iconv -f utf-16 -t utf-8 ${sh(name)} > ${sh(convertedName(name))}, then pass ${sh(convertedName(name))}`,
    );
  }
  let text: string;
  try {
    // fatal: throw on a bad byte instead of substituting U+FFFD. The decoder also drops a leading BOM.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const where = at < 0 ? '' : ` (first bad byte 0x${bytes[at].toString(16).toUpperCase().padStart(2, '0')} at line ${lineAt(bytes, at)})`;
    throw new DeltaTuneError(
      `${name} is not UTF-8 text${where}`,
      `convert it: iconv -f latin1 -t utf-8 ${sh(name)} > ${sh(convertedName(name))} ` +
        `(if it is not Latin-1, put its encoding after -f), then pass ${sh(convertedName(name))}`,
    );
  }
  return checkedDatasetText(text, name);
}

/**
 * Text that is already decoded (a page's `file.text()`, a string a caller built) as a dataset file's
 * text: a leading BOM dropped, a NUL refused as `decodeDatasetText` refuses it.
 */
export function checkedDatasetText(text: string, name: string): string {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    // Valid UTF-8, but a NUL means UTF-16 without a BOM or a binary file (a spreadsheet saved under a .csv name).
    const line = text.slice(0, nul).split('\n').length;
    throw new DeltaTuneError(
      `${name} contains a NUL byte at line ${line}: it is binary or UTF-16, not UTF-8 text`,
      `export it as UTF-8 CSV or JSONL; if it is UTF-16: iconv -f utf-16 -t utf-8 ${sh(name)} > ${sh(convertedName(name))}`,
    );
  }
  return text;
}
