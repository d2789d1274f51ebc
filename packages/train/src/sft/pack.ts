import type { TokenizedSplit } from '../batches';

/**
 * Packs a split's rows (each already at most `maxLength`) into rows of at most `maxLength` ids,
 * best-fit decreasing as TRL's `packing_strategy="bfd"` does: the longest rows first, each into the
 * fullest packed row it still fits in. The loss masks travel with the ids, so the loss still
 * counts only the targets; the first token of each example is context (a prompt token, mask 0), so
 * no example is trained to follow the one before it.
 *
 * Attention does cross examples: a backbone reads one padding mask per row and numbers positions
 * on from the row's start, with no per-example reset (TRL's packing without `padding_free` or a
 * flash-attention kernel behaves the same way). Fewer, fuller rows make an epoch cheaper, at that cost.
 */
export function packSplit(split: TokenizedSplit, maxLength: number): TokenizedSplit {
  const order = split.ids.map((_, i) => i).sort((a, b) => split.ids[b].length - split.ids[a].length || a - b);
  const rows: { ids: number[]; mask: number[] }[] = [];
  // Packed rows by the room they have left: the best fit is the first non-empty bucket from the
  // example's length up (linear in maxLength per example, not in the number of rows).
  const byRoom: number[][] = Array.from({ length: maxLength + 1 }, () => []);
  for (const i of order) {
    const ids = split.ids[i];
    let room = ids.length;
    while (room <= maxLength && byRoom[room].length === 0) room++;
    const r = room <= maxLength ? byRoom[room].pop()! : rows.push({ ids: [], mask: [] }) - 1;
    const mask = [...(split.lossMask?.[i] ?? ids.map(() => 1))];
    mask[0] = 0; // nothing in the example predicts its first token: not the end of the one before it either
    rows[r].ids.push(...ids);
    rows[r].mask.push(...mask);
    byRoom[maxLength - rows[r].ids.length].push(r);
  }
  return { ids: rows.map((r) => r.ids), lossMask: rows.map((r) => r.mask), labels: new Int32Array(rows.length) };
}
