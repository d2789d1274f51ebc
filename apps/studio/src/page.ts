import { DeltaTuneError } from '@deltatune/core';

export function $(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e;
}

/** One line saying what is wrong and one saying what to do, as the CLI prints them. */
export function showError(e: unknown, fix?: string): void {
  const message = typeof e === 'string' ? e : ((e as Error)?.message ?? String(e)).split('\n')[0];
  const fixText = fix ?? (e instanceof DeltaTuneError ? e.fix : undefined);
  $('error-message').textContent = message;
  $('error-fix').textContent = fixText ?? '';
  $('error-fix').hidden = !fixText;
  $('error').hidden = false;
}

export function clearError(): void {
  $('error').hidden = true;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '-';
  const m = Math.floor(s / 60);
  const rest = Math.round(s - 60 * m);
  return m ? `${m}m${String(rest).padStart(2, '0')}s` : `${rest}s`;
}
