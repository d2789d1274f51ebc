// How a dataset file's name appears in messages and fixes. Browser-safe (no node:path): a page
// names a dropped file, the CLI a path, and both get the same words.

/** Quotes a path or column name for the shell commands in fixes, so a suggested command works as pasted. */
export function sh(s: string): string {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The file types a dataset may be, for fixes. */
export const SUPPORTED_DATASET_FILES = 'a .jsonl/.ndjson file (one JSON object per line) or a .csv file (with a header row)';

const isSeparator = (code: number) => code === 0x2f /* / */ || code === 0x5c; /* \ */

/**
 * The extension of a file name or path, as Node's `path.extname` gives it (`.csv`; `''` for
 * `.profile` or `README`), with `/` and `\` both separating folders.
 */
export function extensionOf(path: string): string {
  // Node's algorithm (lib/path.js), so the CLI's messages stay as they were with path.extname.
  let startDot = -1;
  let startPart = 0;
  let end = -1;
  let matchedSlash = true;
  let preDotState = 0; // 0: no character before the last dot; 1: only dots; -1: another character
  for (let i = path.length - 1; i >= 0; --i) {
    const code = path.charCodeAt(i);
    if (isSeparator(code)) {
      if (!matchedSlash) {
        startPart = i + 1;
        break;
      }
      continue;
    }
    if (end === -1) {
      matchedSlash = false;
      end = i + 1;
    }
    if (code === 0x2e /* . */) {
      if (startDot === -1) startDot = i;
      else if (preDotState !== 1) preDotState = 1;
    } else if (startDot !== -1) {
      preDotState = -1;
    }
  }
  if (startDot === -1 || end === -1 || preDotState === 0 || (preDotState === 1 && startDot === end - 1 && startDot === startPart + 1)) {
    return '';
  }
  return path.slice(startDot, end);
}

/** `data.csv` -> `data.utf8.csv`: the converted copy keeps its extension, so it loads as the same kind. */
export function convertedName(path: string): string {
  const ext = extensionOf(path);
  return `${path.slice(0, path.length - ext.length)}.utf8${ext}`;
}
