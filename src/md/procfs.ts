// What /proc says about processes: threads, children, credentials, state,
// executable and mappings. The Linux stand-in for struct proc.
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';

export interface Credentials {
  /** Effective, real and saved uids; effective, real and saved gids; supplementary groups. */
  euid: number;
  ruid: number;
  suid: number;
  egid: number;
  rgid: number;
  sgid: number;
  groups: number[];
  /** Effective capability mask (CapEff), as a bigint bit set. */
  capEff: bigint;
}

export const CAP_SYS_ADMIN = 21n;
export const CAP_SYS_PTRACE = 19n;
export const CAP_PERFMON = 38n;

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readHead(path: string, bytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(bytes);
    return buf.toString('latin1', 0, readSync(fd, buf, 0, bytes, 0));
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The credentials of a process, or undefined when it is gone. */
export function readCredentials(pid: number): Credentials | undefined {
  const status = readText(`/proc/${pid}/status`);
  if (status === undefined) return undefined;
  const field = (name: string): string => /^(\w+):\s*(.*)$/m.exec(status.split('\n').find((l) => l.startsWith(name + ':')) ?? '')?.[2] ?? '';
  const [ruid, euid, suid] = field('Uid').split(/\s+/).map(Number);
  const [rgid, egid, sgid] = field('Gid').split(/\s+/).map(Number);
  const groups = field('Groups').split(/\s+/).filter(Boolean).map(Number);
  return { euid, ruid, suid, egid, rgid, sgid, groups, capEff: BigInt('0x' + (field('CapEff') || '0')) };
}

export function hasCapability(creds: Credentials, cap: bigint): boolean {
  return ((creds.capEff >> cap) & 1n) === 1n;
}

export type ProcessState = 'running' | 'stopped' | 'zombie' | 'dead' | 'other';

/** The single-letter state of /proc/PID/stat, or 'dead' when the process is gone. */
export function processState(pid: number): ProcessState {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return 'dead';
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  switch (state) {
    case 'R':
    case 'S':
    case 'D':
      return 'running';
    case 'T':
    case 't':
      return 'stopped';
    case 'Z':
      return 'zombie';
    case 'X':
      return 'dead';
    default:
      return 'other';
  }
}

/** Parent pid from /proc/PID/stat, or undefined when the process is gone. */
export function parentPid(pid: number): number | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** User and system CPU time of a process in clock ticks (utime, stime, and those of waited-for children). */
export function processCpuTicks(pid: number): { utime: number; stime: number; cutime: number; cstime: number } | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: state is f[0]; utime is field 14 of stat, i.e. f[11].
  return { utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
}

/** Thread ids of a process; empty when it is gone. */
export function listThreads(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter((n) => Number.isInteger(n));
  } catch {
    return [];
  }
}

export function listPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Every live descendant of the given processes (children, their children, ...), parents before children, from one scan of /proc. */
export function listDescendants(...pids: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const p of listPids()) {
    const pp = parentPid(p);
    if (pp === undefined) continue;
    const list = children.get(pp);
    if (list) list.push(p);
    else children.set(pp, [p]);
  }
  const out: number[] = [];
  const queue = pids.flatMap((p) => children.get(p) ?? []);
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** The command name (comm) of a process. */
export function processName(pid: number): string | undefined {
  return readText(`/proc/${pid}/comm`)?.trimEnd();
}

/** The path of the executable, or undefined (kernel threads, gone, or not permitted). */
export function executablePath(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

export interface MapEntry {
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  path: string;
}

export function readMaps(pid: number | 'self'): MapEntry[] {
  const text = readText(`/proc/${pid}/maps`);
  if (text === undefined) return [];
  const out: MapEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \d+\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), perms: m[3], offset: BigInt('0x' + m[4]), path: m[5] });
  }
  return out;
}

export function readSysctl(name: string): string | undefined {
  return readText(`/proc/sys/${name.replace(/\./g, '/')}`)?.trim();
}

/**
 * Executable images mapped by a process, one per file: the address at which
 * file offset 0 is (or would be) mapped, as the owner log's MAP_IN wants.
 */
export function executableImages(pid: number): { start: bigint; path: string }[] {
  const images = new Map<string, bigint>();
  for (const m of readMaps(pid)) {
    if (!m.perms.includes('x') || !(m.path.startsWith('/') || m.path === '[vdso]')) continue;
    const start = m.start - m.offset;
    const known = images.get(m.path);
    if (known === undefined || start < known) images.set(m.path, start);
  }
  return [...images].map(([path, start]) => ({ start, path }));
}

/** Where the kernel's text starts (from /proc/kallsyms), or 0n when addresses are hidden. */
export function kernelTextStart(): bigint {
  // _stext and _text are among the first lines: 64 KiB of the 5+ MB file is plenty.
  const text = readHead('/proc/kallsyms', 64 * 1024);
  const m = /^([0-9a-f]+) [tT] _stext$/m.exec(text) ?? /^([0-9a-f]+) [tT] _text$/m.exec(text);
  return m ? BigInt('0x' + m[1]) : 0n;
}

/** Loaded kernel modules and their load addresses (0n when hidden). */
export function kernelModules(): { name: string; start: bigint }[] {
  const text = readText('/proc/modules') ?? '';
  const out: { name: string; start: bigint }[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length >= 6 && /^0x[0-9a-f]+$/.test(f[5])) out.push({ name: f[0], start: BigInt(f[5]) });
  }
  return out;
}
