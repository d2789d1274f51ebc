export type ScheduleKind = 'constant' | 'linear' | 'cosine';

/**
 * Learning rate at `step` (1-based): linear warm-up over `warmup` steps to `peak`, then constant,
 * linear decay to 0, or cosine decay to 0 at `total`.
 */
export function learningRate(step: number, peak: number, warmup: number, total: number, kind: ScheduleKind): number {
  if (warmup > 0 && step <= warmup) return (peak * step) / warmup;
  if (kind === 'constant') return peak;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  if (kind === 'linear') return peak * (1 - progress);
  return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
}
