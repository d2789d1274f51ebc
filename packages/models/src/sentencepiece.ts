import type { TextTokenizer } from './tokenizer';

/**
 * A SentencePiece unigram tokenizer for USE-lite's vocabulary (`[piece, logProb][]`): NFKC,
 * spaces as U+2581 with one in front, then the Viterbi segmentation of highest total log
 * probability. Characters no piece covers become the unknown id (0), runs of them merged, as the
 * reference tokenizer does.
 */
export class SentencePieceTokenizer implements TextTokenizer {
  readonly padId = 0;
  readonly defaultMaxLength = 128;
  private readonly root: TrieNode = { children: new Map() };
  private readonly unknownScore: number;
  private readonly maxPieceLength: number;

  constructor(vocabulary: ReadonlyArray<readonly [string, number]>, reserved = 6) {
    let minScore = 0;
    let maxLen = 1;
    for (let id = reserved; id < vocabulary.length; id++) {
      const [piece, score] = vocabulary[id];
      const chars = [...piece];
      let node = this.root;
      for (const ch of chars) {
        let next = node.children.get(ch);
        if (!next) node.children.set(ch, (next = { children: new Map() }));
        node = next;
      }
      node.piece = { id, score };
      minScore = Math.min(minScore, score);
      maxLen = Math.max(maxLen, chars.length);
    }
    this.unknownScore = minScore - 10;
    this.maxPieceLength = maxLen;
  }

  encodeOne(text: string): { ids: number[] } {
    const normalized = text.normalize('NFKC');
    if (normalized.length === 0) return { ids: [] };
    const chars = [...('\u2581' + normalized.replace(/ /g, '\u2581'))];
    const n = chars.length;
    const best = new Float64Array(n + 1).fill(-Infinity);
    const backId = new Int32Array(n + 1);
    const backStart = new Int32Array(n + 1);
    best[0] = 0;
    for (let start = 0; start < n; start++) {
      if (best[start] === -Infinity) continue;
      // The unknown fallback: one character, heavily penalised, so it is chosen only when needed.
      const unk = best[start] + this.unknownScore;
      if (unk > best[start + 1]) {
        best[start + 1] = unk;
        backId[start + 1] = 0;
        backStart[start + 1] = start;
      }
      let node: TrieNode | undefined = this.root;
      for (let end = start; end < n && end - start < this.maxPieceLength; end++) {
        node = node.children.get(chars[end]);
        if (!node) break;
        if (node.piece) {
          const score = best[start] + node.piece.score;
          if (score > best[end + 1]) {
            best[end + 1] = score;
            backId[end + 1] = node.piece.id;
            backStart[end + 1] = start;
          }
        }
      }
    }
    const ids: number[] = [];
    for (let at = n; at > 0; at = backStart[at]) ids.push(backId[at]);
    ids.reverse();
    return { ids: ids.filter((id, i) => !(id === 0 && ids[i - 1] === 0)) };
  }
}

interface TrieNode {
  children: Map<string, TrieNode>;
  piece?: { id: number; score: number };
}
