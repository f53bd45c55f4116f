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
    // A message that already ends naming its errno ("... failed with ENOENT") is not told it twice.
    super(new RegExp(`\\b${code}\\)?$`).test(message) ? message : `${message} (${code})`);
    this.name = 'PmcError';
    this.code = code;
    this.detail = message;
  }

  /** The same error, its message put in a context ("what failed: detail"). */
  within(context: string): PmcError {
    return new PmcError(this.code, `${context}: ${this.detail}`);
  }

  static fromErrno(negOrPosErrno: number, message: string): PmcError {
    return new PmcError(errnoName(negOrPosErrno), message);
  }
}

export function isPmcError(e: unknown, code?: ErrnoName): e is PmcError {
  return e instanceof PmcError && (code === undefined || e.code === code);
}

// Errno names by number, from the running platform's own table.
const byNumber = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!byNumber.has(value)) byNumber.set(value, name);
}

/** 'EPERM' for 1 (or -1); 'E<n>' when the number has no name. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return byNumber.get(n) ?? `E${n}`;
}
