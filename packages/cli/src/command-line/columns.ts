/** Rows as aligned columns (every column but the last padded to its widest cell), each line indented. */
export function columns(rows: ReadonlyArray<readonly string[]>, indent: string): string[] {
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), []);
  return rows.map(
    (row) =>
      indent +
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
  );
}
