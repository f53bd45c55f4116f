// PMCADMIN's row states outlive one process: hwpmc keeps them in the kernel
// until changed, we keep them in a root-owned file that every module reads
// when it loads. (Row dispositions of live PMCs are per module instance;
// pmcd is the system-wide module.)
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const DEFAULT_ADMIN_STATE = '/run/tspmc/admin.json';

/** Disabled rows, as "cpu:row" pairs. */
export interface AdminState {
  disabled: [number, number][];
}

export function readAdminState(path: string): AdminState {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<AdminState>;
    const pairs = Array.isArray(parsed.disabled) ? parsed.disabled : [];
    return { disabled: pairs.filter((p) => Array.isArray(p) && p.length === 2 && p.every((n) => Number.isInteger(n) && n >= 0)) };
  } catch {
    return { disabled: [] };
  }
}

export function writeAdminState(path: string, state: AdminState): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state) + '\n', { mode: 0o644 });
  renameSync(tmp, path);
}
