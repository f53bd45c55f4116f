// Shared by the report tests: builds the C test program and log records by hand.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LogType,
  type CallchainRecord,
  type DropNotifyRecord,
  type MapInRecord,
  type MapOutRecord,
  type PmcAllocateDynRecord,
  type PmcAttachRecord,
  type ProcExecRecord,
  type ProcExitRecord,
  type ProcForkRecord,
} from '../src/log/records.js';

// Report tests never write the user's cache of kernel symbols (report/kallsyms-cache.ts).
process.env.TSPMC_CACHE_DIR ??= '';

export const SOURCE = fileURLToPath(new URL('../../test/fixtures/report-prog.c', import.meta.url));

export interface Program {
  path: string;
  /** Symbol -> link-time address and size, as nm reports them. */
  syms: Map<string, { addr: number; size: number }>;
  /** The executable PT_LOAD's p_vaddr - p_offset, as readelf reports it. */
  linkBase: number;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Compiles the fixture; symbol addresses come from nm, not from the code under test. */
export function buildProgram(dir: string, name: string, flags: string[]): Program {
  const path = join(dir, name);
  execFileSync('gcc', ['-O0', '-fno-omit-frame-pointer', ...flags, '-o', path, SOURCE]);
  return { path, syms: nmSymbols(path, []), linkBase: textLoadBase(path) };
}

export function nmSymbols(path: string, extra: string[]): Map<string, { addr: number; size: number }> {
  const syms = new Map<string, { addr: number; size: number }>();
  const out = execFileSync('nm', ['-S', '--defined-only', ...extra, path], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    // nm -D prints versioned names (getpid@@GLIBC_2.2.5).
    const f = line.trim().replace(/@.*$/, '').split(/\s+/);
    if (f.length === 4 && /^[tTwW]$/.test(f[2])) syms.set(f[3], { addr: parseInt(f[0], 16), size: parseInt(f[1], 16) });
    else if (f.length === 3 && /^[tTwW]$/.test(f[1])) syms.set(f[2], { addr: parseInt(f[0], 16), size: 0 });
  }
  return syms;
}

/** p_vaddr - p_offset of the first executable PT_LOAD, from readelf: the link address of file offset 0 as MAP_IN sees it. */
export function textLoadBase(path: string): number {
  const out = execFileSync('readelf', ['-lW', path], { encoding: 'utf8' });
  // LOAD offset vaddr paddr filesz memsz flags align; flags are three columns wide ("R E", "RWE").
  const load = out.split('\n').find((l) => /^\s*LOAD\s.*\s[R ][W ]E\s+0x[0-9a-f]+$/.test(l))!.trim().split(/\s+/);
  return parseInt(load[2], 16) - parseInt(load[1], 16);
}

export function sym(p: Program, name: string): { addr: number; size: number } {
  const s = p.syms.get(name);
  if (!s) throw new Error(`${p.path} has no symbol ${name}`);
  return s;
}

/** A PC `at` bytes into function `name` of a program loaded with file offset 0 at `start`. */
export function pcIn(p: Program, start: bigint, name: string, at: number): bigint {
  return start - BigInt(p.linkBase) + BigInt(sym(p, name).addr + at);
}

/** A return address inside `name` (the middle of the function). */
export function retIn(p: Program, start: bigint, name: string): bigint {
  const s = sym(p, name);
  return pcIn(p, start, name, Math.max(1, s.size >> 1));
}

let ts = 0;
export const rec = {
  allocDyn: (pmcid: number, eventName: string): PmcAllocateDynRecord => ({
    type: LogType.PMCALLOCATEDYN, ts: ts++, pmcid, event: 0, flags: 0, rate: 1000n, eventName,
  }),
  mapIn: (pid: number, start: bigint, pathname: string): MapInRecord => ({ type: LogType.MAP_IN, ts: ts++, pid, start, pathname }),
  mapOut: (pid: number, start: bigint, end: bigint): MapOutRecord => ({ type: LogType.MAP_OUT, ts: ts++, pid, start, end }),
  exec: (pid: number, pathname: string): ProcExecRecord => ({ type: LogType.PROCEXEC, ts: ts++, pid, pmcid: 0, base: 0n, dyn: 0n, pathname }),
  fork: (oldpid: number, newpid: number): ProcForkRecord => ({ type: LogType.PROCFORK, ts: ts++, oldpid, newpid }),
  exit: (pid: number): ProcExitRecord => ({ type: LogType.PROCEXIT, ts: ts++, pmcid: 0, pid, value: 0n }),
  attach: (pmcid: number, pid: number, pathname: string): PmcAttachRecord => ({ type: LogType.PMCATTACH, ts: ts++, pmcid, pid, pathname }),
  drop: (dropped: number, lost: number): DropNotifyRecord => ({ type: LogType.DROPNOTIFY, ts: ts++, dropped, lost }),
  callchain: (pid: number, pmcid: number, pcs: bigint[], user = true): CallchainRecord => ({
    type: LogType.CALLCHAIN, ts: ts++, pid, tid: pid, pmcid, cpu: 0, flags: user ? 1 : 0, pcs: BigUint64Array.from(pcs),
  }),
};

/** Text of a formatter's pieces. */
export const text = (pieces: Iterable<string>): string => [...pieces].join('');

/** The C library this process runs on (its path differs between distributions): from /proc/self/maps. */
export function libcPath(): string {
  const m = /\s(\/\S*\/libc\.so\.6)$/m.exec(readFileSync('/proc/self/maps', 'utf8'));
  if (!m) throw new Error('no libc.so.6 in /proc/self/maps');
  return m[1];
}

export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
