// How the tools fail: one line on stderr naming the input and the errno
// name, exit status 2 for usage errors and 1 for errors at run time.
import { PmcError } from '../pmc-error.js';

export class UsageError extends Error {}

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

export function reportAndExit(tool: string, e: unknown): never {
  if (e instanceof UsageError) {
    process.stderr.write(`${tool}: ${e.message}\n${tool}: try '${tool} --help'\n`);
    process.exit(EXIT_USAGE);
  }
  if (e instanceof PmcError) {
    process.stderr.write(`${tool}: ERROR: ${e.message}\n`);
    process.exit(EXIT_RUNTIME);
  }
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ? ` (${err.code})` : '';
  process.stderr.write(`${tool}: ERROR: ${err?.message ?? String(e)}${code}\n`);
  process.exit(EXIT_RUNTIME);
}

/** A number argument, or a usage error naming the option. */
export function numberArg(option: string, text: string, { min = -Infinity, integer = false } = {}): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    const what = integer ? 'an integer' : 'a number';
    throw new UsageError(`option ${option}: "${text}" is not ${what}${min > -Infinity ? ` >= ${min}` : ''}`);
  }
  return n;
}

/** A failed file operation as one line: the option, the path, what failed, why, and the errno name. */
export function fileError(option: string, path: string, what: string, e: unknown): PmcError {
  const err = e as NodeJS.ErrnoException;
  // Node's text is "ENOENT: no such file or directory, open 'x'": keep the middle.
  const why = (err?.message ?? String(e)).replace(/^[A-Z0-9]+: /, '').replace(/, \w+( '.*')?$/s, '');
  return new PmcError(err?.code ?? 'EIO', `${option} ${path}: ${what}: ${why}`);
}
