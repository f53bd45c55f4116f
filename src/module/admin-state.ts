// PMCADMIN's row states outlive one process: hwpmc keeps them in the kernel
// until changed, we keep them in a root-owned file that every module reads
// when it loads. (Row dispositions of live PMCs are per module instance;
// pmcd is the system-wide module.)
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PmcError } from '../pmc-error.js';

export const DEFAULT_ADMIN_STATE = '/run/tspmc/admin.json';

/** Disabled rows, as "cpu:row" pairs. */
export interface AdminState {
  disabled: [number, number][];
}

/**
 * The persisted states; none when the file does not exist. A file that
 * cannot be read or does not hold the expected shape is an error: reading
 * it as "nothing disabled" would silently re-enable rows an administrator
 * disabled.
 */
export function readAdminState(path: string): AdminState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') return { disabled: [] };
    throw new PmcError(code, `cannot read the PMC admin state file ${path}: ${(e as Error).message}`);
  }
  const broken = (why: string): PmcError =>
    new PmcError('EINVAL', `the PMC admin state file ${path} is corrupt (${why}); fix it, or remove it to enable every row again`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw broken((e as Error).message);
  }
  const disabled = (parsed as Partial<AdminState> | null)?.disabled;
  if (!Array.isArray(disabled)) throw broken('no "disabled" list');
  for (const p of disabled) {
    if (!Array.isArray(p) || p.length !== 2 || !p.every((n) => Number.isInteger(n) && n >= 0)) {
      throw broken(`${JSON.stringify(p)} is not a [cpu, row] pair`);
    }
  }
  return { disabled };
}

export function writeAdminState(path: string, state: AdminState): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state) + '\n', { mode: 0o644 });
  renameSync(tmp, path);
}
