// What /proc says about processes: threads, children, credentials, state,
// executable and mappings. The Linux stand-in for struct proc.
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync } from 'node:fs';
import { PmcError } from '../pmc-error.js';

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

/** The process a /proc path names is gone (or never was): its files read as ENOENT or ESRCH. */
function isGone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH';
}

/** A /proc read that tells a gone process (undefined) from a failed read (a PmcError: EMFILE, EACCES...). */
function readProcText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (isGone(e)) return undefined;
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new PmcError(code, `cannot read ${path}: ${(e as Error).message}`);
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

/** The credentials of a process, or undefined when it is gone; a failed read is a PmcError. */
export function readCredentials(pid: number): Credentials | undefined {
  const status = readProcText(`/proc/${pid}/status`);
  if (status === undefined) return undefined;
  const field = (name: string): string => /^(\w+):\s*(.*)$/m.exec(status.split('\n').find((l) => l.startsWith(name + ':')) ?? '')?.[2] ?? '';
  const [ruid, euid, suid] = field('Uid').split(/\s+/).map(Number);
  const [rgid, egid, sgid] = field('Gid').split(/\s+/).map(Number);
  const groups = field('Groups').split(/\s+/).filter(Boolean).map(Number);
  return { euid, ruid, suid, egid, rgid, sgid, groups, capEff: BigInt('0x' + (field('CapEff') || '0')) };
}

/**
 * The effective uid and gid of a live process, read as the owner of its
 * /proc directory, which the kernel keeps equal to them whatever the
 * process's dumpable state: one stat, about a tenth of what reading and
 * parsing /proc/PID/status costs. Undefined when the process is gone.
 */
export function effectiveIds(pid: number): { euid: number; egid: number } | undefined {
  const path = `/proc/${pid}`;
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    return st && { euid: st.uid, egid: st.gid };
  } catch (e) {
    if (isGone(e)) return undefined;
    throw new PmcError((e as NodeJS.ErrnoException).code ?? 'EIO', `cannot stat ${path}: ${(e as Error).message}`);
  }
}

export function hasCapability(creds: Credentials, cap: bigint): boolean {
  return ((creds.capEff >> cap) & 1n) === 1n;
}

type ProcessState = 'running' | 'stopped' | 'zombie' | 'dead' | 'other';

/**
 * The single-letter state of /proc/PID/stat, or 'dead' when the process is
 * gone. A read that fails for another reason (EMFILE, EACCES) is a PmcError:
 * a process we cannot look at is not thereby dead.
 */
function processState(pid: number): ProcessState {
  const stat = readProcText(`/proc/${pid}/stat`);
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

/**
 * Whether a process has exited: gone, or a zombie whose every thread has
 * exited. A leader that called pthread_exit is a zombie while its other
 * threads run: the process lives on (as its pidfd says).
 */
export function processExited(pid: number): boolean {
  const state = processState(pid);
  if (state === 'dead') return true;
  if (state !== 'zombie') return false;
  return !listThreads(pid).some((tid) => tid !== pid);
}

/** Fields of /proc/PID/stat after the command name (f[0] is the state, field 3), or undefined when gone. */
function statFields(pid: number): string[] | undefined {
  const stat = readProcText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Parent pid from /proc/PID/stat, or undefined when the process is gone. */
function parentPid(pid: number): number | undefined {
  const f = statFields(pid);
  return f === undefined ? undefined : Number(f[1]);
}

/**
 * When the process started, in clock ticks since boot (field 22 of stat):
 * with the pid, it names one process even after the pid is reused.
 */
export function processStartTime(pid: number): number | undefined {
  const f = statFields(pid);
  return f === undefined ? undefined : Number(f[19]);
}

/** Thread ids of a process; empty when it is gone, a PmcError when /proc cannot be read. */
export function listThreads(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter((n) => Number.isInteger(n));
  } catch (e) {
    if (isGone(e)) return [];
    throw new PmcError((e as NodeJS.ErrnoException).code ?? 'EIO', `cannot list /proc/${pid}/task: ${(e as Error).message}`);
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

function readMaps(pid: number | 'self'): MapEntry[] {
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
 * The executable mappings of files (and the vdso) of a process, each as the
 * owner log's MAP_IN wants it: where it puts file offset 0 (`start`), and
 * the file bytes [offset, offset + length) it maps at start + offset. A file
 * may be mapped several times (V8 maps a piece of node's text again).
 */
export function executableMappings(pid: number): { start: bigint; offset: bigint; length: bigint; path: string }[] {
  const out: { start: bigint; offset: bigint; length: bigint; path: string }[] = [];
  for (const m of readMaps(pid)) {
    if (!m.perms.includes('x') || !(m.path.startsWith('/') || m.path === '[vdso]')) continue;
    out.push({ start: m.start - m.offset, offset: m.offset, length: m.end - m.start, path: m.path });
  }
  return out;
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
