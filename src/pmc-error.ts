// One error type for every layer: an errno name as hwpmc would return it,
// plus a message that says which input was wrong and what was expected.
import { constants } from 'node:os';

export type ErrnoName =
  | 'EINVAL' | 'EBUSY' | 'EEXIST' | 'EPERM' | 'EACCES' | 'ESRCH' | 'ENXIO' | 'ENOENT'
  | 'EOPNOTSUPP' | 'ENOSYS' | 'ENOMEM' | 'EMFILE' | 'ENODEV' | 'E2BIG' | 'EOVERFLOW'
  | 'EDOOFUS' | 'EPROGMISMATCH' | 'EIO' | 'EBADF' | 'ENOSPC' | 'EPIPE' | (string & {});

export class PmcError extends Error {
  readonly code: ErrnoName;
  /** The message without the errno name, for wrapping in a message of one's own. */
  readonly detail: string;

  constructor(code: ErrnoName, message: string) {
    super(`${message} (${code})`);
    this.name = 'PmcError';
    this.code = code;
    this.detail = message;
  }

  /** The same error, its message put in a context ("what failed: detail"). */
  within(context: string): PmcError {
    return new PmcError(this.code, `${context}: ${this.detail}`);
  }

  /** The Linux errno number, where the name has one (EDOOFUS does not). */
  get errno(): number | undefined {
    try {
      return errnoNumber(this.code);
    } catch {
      return undefined;
    }
  }

  static fromErrno(negOrPosErrno: number, message: string): PmcError {
    return new PmcError(errnoName(negOrPosErrno), message);
  }
}

export function isPmcError(e: unknown, code?: ErrnoName): e is PmcError {
  return e instanceof PmcError && (code === undefined || e.code === code);
}

// Errno numbers <-> names, from the running platform's own table.
const byNumber = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!byNumber.has(value)) byNumber.set(value, name);
}

/** 'EPERM' for 1 (or -1); 'E<n>' when the number has no name. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return byNumber.get(n) ?? `E${n}`;
}

function errnoNumber(name: string): number {
  const n = (constants.errno as Record<string, number>)[name];
  if (n === undefined) throw new Error(`unknown errno name ${name}`);
  return n;
}
