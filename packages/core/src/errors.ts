/**
 * Every error deltatune raises on bad input: one line saying what is wrong, and `fix` saying what
 * to do about it. The CLI prints both and no stack trace.
 */
export class DeltaTuneError extends Error {
  readonly fix?: string;
  constructor(message: string, fix?: string) {
    super(fix ? `${message}\n  fix: ${fix}` : message);
    this.name = 'DeltaTuneError';
    this.fix = fix;
  }
}
