// CPU numbers as the kernel lists them in sysfs ("0-3,5,8-11").
import { readFileSync } from 'node:fs';
import { parseCpuList } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';

const CPU_DIR = '/sys/devices/system/cpu';

function readCpuList(path: string): number[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PmcError((e as NodeJS.ErrnoException).code ?? 'EIO', `cannot read ${path}`);
  }
  return parseCpuList(text, path);
}

/** CPUs online now (read each call: CPUs can be hot-plugged). */
export function onlineCpus(): number[] {
  return readCpuList(`${CPU_DIR}/online`);
}

let possibleCount: number | undefined;

/** One more than the highest CPU number the kernel may ever bring online (hwpmc's mp_maxid + 1). */
export function possibleCpuCount(): number {
  if (possibleCount === undefined) {
    const cpus = readCpuList(`${CPU_DIR}/possible`);
    possibleCount = cpus.length === 0 ? 0 : Math.max(...cpus) + 1;
  }
  return possibleCount;
}
