// Starting a command so that PMCs can be attached before it runs its first
// instruction (pmcstat's fork/attach/exec protocol). Node cannot run code
// between fork and exec, so the child is a shell that stops itself; we
// attach while it is stopped, continue it, and it execs the command in the
// same process. What the shell does after SIGCONT is a single exec.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';
import { processState } from '../md/procfs.js';
import { PmcError } from '../pmc-error.js';

export interface LaunchedCommand {
  pid: number;
  child: ChildProcess;
  /** Let the command run (it is stopped until then). */
  resume(): void;
  /** Resolves with the exit status as a shell reports it: the code, or 128 + signal number. */
  exited: Promise<number>;
}

/** The executable a command name runs, as execvp would find it, or a PmcError ENOENT/EACCES. */
export function findExecutable(command: string, pathVar = process.env.PATH ?? '/usr/bin:/bin'): string {
  const candidates = command.includes('/') ? [command] : pathVar.split(delimiter).filter(Boolean).map((d) => join(d, command));
  let denied = false;
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  if (denied) throw new PmcError('EACCES', `command "${command}" is not executable`);
  throw new PmcError('ENOENT', `command not found: "${command}"`);
}

export async function launchStopped(argv: string[], stdio: 'inherit' | 'ignore' | 'pipe' = 'inherit'): Promise<LaunchedCommand> {
  if (argv.length === 0) throw new PmcError('EINVAL', 'no command given');
  const executable = findExecutable(argv[0]);
  const child = spawn('/bin/sh', ['-c', 'kill -STOP $$ && exec "$0" "$@"', executable, ...argv.slice(1)], { stdio, argv0: argv[0] });
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new PmcError('EAGAIN', `cannot start "${argv[0]}"`);
  // Wait for the shell to stop itself.
  for (let waited = 0; processState(pid) !== 'stopped'; waited++) {
    if (processState(pid) === 'dead' || waited > 5000) {
      child.kill('SIGKILL');
      throw new PmcError('ESRCH', `"${argv[0]}" did not reach its start point`);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return { pid, child, resume: () => process.kill(pid, 'SIGCONT'), exited };
}

function signalNumber(signal: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}
