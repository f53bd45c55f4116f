// CPU numbers as the kernel lists them in sysfs ("0-3,5,8-11").
import { readFileSync } from 'node:fs';
import { PmcError } from '../pmc-error.js';

const CPU_DIR = '/sys/devices/system/cpu';

/** Expands a kernel cpu list; `where` names the source in errors. An empty list is valid. */
export function parseCpuList(text: string, where: string): number[] {
  const body = text.trim();
  if (body === '') return [];
  const cpus: number[] = [];
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new PmcError('EINVAL', `${where}: "${part}" is not a cpu number or range like 0-3`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new PmcError('EINVAL', `${where}: range "${part}" ends before it starts`);
    for (let c = lo; c <= hi; c++) cpus.push(c);
  }
  return cpus;
}

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
