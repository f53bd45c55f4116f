// Shared by the signal tests of pmcstat: the cleanup command's report, the
// process table (what is left behind, pmcstat's launcher), waits with hang guards.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ToolRun } from './cli-fixture.js';

let runs = 0;

export interface CleanupReport {
  cpuNs: number;
  exitMonotonicNs: bigint;
  signal: number;
}

/** A fresh report path; it also marks the run's processes in the process table. */
export function reportPath(d: string): string {
  return join(d, `report-${process.pid}-${runs++}`);
}

export function readReport(path: string): CleanupReport {
  const [cpu, mono, sig] = readFileSync(path, 'utf8').trim().split(' ');
  return { cpuNs: Number(cpu), exitMonotonicNs: BigInt(mono), signal: Number(sig) };
}

/** Polls until `cond` holds; a hang guard, not a measurement. */
export async function waitFor(what: string, cond: () => boolean, guardMs = 60_000): Promise<void> {
  const end = Date.now() + guardMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`hang guard: no ${what} after ${guardMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Processes whose command line mentions `marker` (the command and its launcher carry the report path). */
export function processesWith(marker: string): string[] {
  const found: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmdline = readFileSync(`/proc/${d}/cmdline`, 'latin1');
      if (cmdline.includes(marker)) found.push(`${d}: ${cmdline.replaceAll('\0', ' ')}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** A process's state letter (or a thread's, given 'PID/task/TID'); undefined once it is gone. */
export function stateOf(pid: number | string): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Waits (polling, without yielding) until every thread of `pid` is stopped; false if it is gone or `end` passes. */
function allStopped(pid: number, end: number): boolean {
  while (Date.now() < end) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return false;
    }
    if (tids.every((t) => stateOf(`${pid}/task/${t}`) === 'T')) return true;
  }
  return false;
}

/**
 * Whether `pid` is pmcstat's launcher waiting at its gate: the shell (not
 * yet setpriv, not yet the command) asleep in the read of its gate, the only
 * place it sleeps before its exec.
 */
function atGate(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('/bin/sh\0-c\0') && stateOf(pid) === 'S';
  } catch {
    return false;
  }
}

/**
 * Catches pmcstat while its launcher waits at its gate for the PMCs to be
 * attached (a few milliseconds): polls without yielding, then stops pmcstat
 * itself (SIGSTOP) so that the moment lasts. Returns the launcher's pid, or
 * undefined if the moment was missed.
 */
export function freezeAtLaunch(pmcstatPid: number, commandRan: () => boolean, guardMs = 30_000): number | undefined {
  const end = Date.now() + guardMs;
  while (Date.now() < end && stateOf(pmcstatPid) !== undefined && !commandRan()) {
    const launcher = childrenOf(pmcstatPid).find(atGate);
    if (launcher === undefined) continue;
    process.kill(pmcstatPid, 'SIGSTOP');
    // A thread stops when it next leaves the kernel: a "go" pmcstat was
    // writing its launcher may still land. Once every thread is stopped, the
    // launcher's state is what pmcstat left it in.
    if (!allStopped(pmcstatPid, end)) return undefined;
    if (atGate(launcher)) return launcher;
    process.kill(pmcstatPid, 'SIGCONT');
    return undefined;
  }
  return undefined;
}

/**
 * pmcstat's run once it has exited and its output is in. A process it left
 * behind would hold its stdout and stderr open: that fails here, at once,
 * rather than as a test that never ends.
 */
export async function ended(run: { child: ChildProcess; done: Promise<ToolRun> }, guardMs = 5_000): Promise<ToolRun> {
  const { child } = run;
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  let timer: NodeJS.Timeout | undefined;
  const held = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pmcstat exited (${child.exitCode ?? child.signalCode}) but its output is still held open ${guardMs} ms later: something it started is left behind`)), guardMs);
  });
  try {
    return await Promise.race([run.done, held]);
  } finally {
    clearTimeout(timer);
  }
}
