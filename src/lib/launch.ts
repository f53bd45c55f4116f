// Starting a command so that PMCs can be attached before it runs its first
// instruction (pmcstat's fork/attach/exec protocol). Node cannot run code
// between fork and exec, so the child is a shell that waits at a gate: it
// says it is there on a socket (descriptor 3), and blocks reading it until we
// have attached and write "go"; then it execs the command in the same
// process, without descriptor 3. The gate is a read, not a stop of its own
// (kill -STOP $$): under a tracer (strace -f) a self-stop first shows in
// /proc as a signal-delivery-stop, which looks stopped before it is, and a
// SIGCONT sent then is spent before the SIGSTOP lands, which stops the shell
// for good. Until the gate opens the shell ignores the stop signals a
// terminal sends its whole job (we end it with SIGKILL); the exec restores
// what they were when we started it.
import { type ChildProcess, spawn, type StdioOptions } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { listDescendants } from '../os/procfs.js';
import { PmcError } from '../pmc-error.js';

export interface LaunchedCommand {
  pid: number;
  child: ChildProcess;
  /** Let the command run (it waits at its gate until then). */
  resume(): void;
  /** Whether resume() was called: before, the command has not run an instruction of its own. */
  readonly resumed: boolean;
  /** Whether the process is still there (not yet exited and reaped). */
  readonly running: boolean;
  /** Resolves with the exit status as a shell reports it: the code, or 128 + signal number. */
  exited: Promise<number>;
  /**
   * `signal` to the command and every process below it, as a terminal sends
   * it to a foreground job: a shell that dies of it would leave its children
   * running, re-parented to init.
   */
  signalTree(signal: NodeJS.Signals): void;
  /** SIGKILL to the command and every process below it; returns how many were below it. */
  killTree(): number;
}

/** The executable a command name runs, as execvp would find it, or a PmcError ENOENT/EACCES. */
export function findExecutable(command: string, pathVar = process.env.PATH ?? '/usr/bin:/bin'): string {
  const candidates = command.includes('/') ? [command] : pathVar.split(delimiter).filter(Boolean).map((d) => join(d, command));
  let denied = false;
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) {
        // execve refuses a directory with EACCES; say what it is.
        if (command.includes('/')) throw new PmcError('EACCES', `command "${command}" is a directory, not an executable file`);
        continue;
      }
      accessSync(c, constants.X_OK);
      return c;
    } catch (e) {
      if (e instanceof PmcError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  if (denied) throw new PmcError('EACCES', `command "${command}" is not executable`);
  throw new PmcError('ENOENT', `command not found: "${command}"`);
}

/** util-linux setpriv, which can set PR_SET_PDEATHSIG between fork and exec (undefined if absent). */
let setpriv: string | null | undefined;
function findSetpriv(): string | undefined {
  if (setpriv === undefined) {
    try {
      setpriv = findExecutable('setpriv', '/usr/bin:/bin:/usr/sbin:/sbin');
    } catch {
      setpriv = null;
    }
  }
  return setpriv ?? undefined;
}

export interface LaunchOptions {
  stdio?: 'inherit' | 'ignore' | 'pipe';
  /** Aborting kills the launcher (SIGKILL: it has not run the command yet) and rejects with EINTR. */
  signal?: AbortSignal;
}

/**
 * The launcher must not outlive this process, even if it is killed with SIGKILL: it
 * is started with PR_SET_PDEATHSIG = SIGKILL (through setpriv, where there is one),
 * which survives the exec of the shell and of the command, so the kernel kills the
 * waiting shell or the running command when this process dies (the gate's socket
 * closing would also end the shell's read). The shell checks that its parent is
 * still this process, which closes the window between fork and prctl.
 */
export async function launchHeld(argv: string[], options: LaunchOptions['stdio'] | LaunchOptions = {}): Promise<LaunchedCommand> {
  const { stdio = 'inherit', signal } = typeof options === 'string' ? { stdio: options } : options;
  if (argv.length === 0) throw new PmcError('EINVAL', 'no command given');
  const executable = findExecutable(argv[0]);
  const script = `[ "$PPID" = ${process.pid} ] || exit 125; trap '' ${STOP_SIGNALS}; echo >&3 && read -r go <&3 && trap - ${STOP_SIGNALS} && exec "$0" "$@" 3<&-; exit 125`;
  const shell = ['/bin/sh', '-c', script, executable, ...argv.slice(1)];
  const guard = findSetpriv();
  const spawnOptions = { stdio: [stdio, stdio, stdio, 'pipe'] as StdioOptions };
  const child = guard ? spawn(guard, ['--pdeathsig', 'KILL', '--', ...shell], spawnOptions) : spawn(shell[0], shell.slice(1), spawnOptions);
  let resumed = false;
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? signalNumber(sig) : 0)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new PmcError('EAGAIN', `cannot start "${argv[0]}"`);
  const gate = child.stdio[3] as Duplex;
  // EPIPE when the shell died before the gate opened: its exit says so.
  gate.on('error', () => undefined);
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const give = async (e: PmcError): Promise<never> => {
    child.kill('SIGKILL');
    gate.destroy();
    await exited;
    throw e;
  };
  // Wait for the shell to reach the gate.
  let aborted!: () => void;
  const reached = await new Promise<boolean>((resolve) => {
    aborted = () => resolve(false);
    signal?.addEventListener('abort', aborted);
    if (signal?.aborted) resolve(false);
    gate.once('data', () => resolve(true));
    child.once('exit', () => resolve(false));
  });
  signal?.removeEventListener('abort', aborted);
  if (signal?.aborted) return give(new PmcError('EINTR', `start of "${argv[0]}" interrupted`));
  if (!reached || !running()) return give(new PmcError('ESRCH', `"${argv[0]}" did not reach its start point`));
  return {
    pid,
    child,
    resume: () => {
      resumed = true;
      gate.end('go\n');
    },
    get resumed() {
      return resumed;
    },
    get running() {
      return running();
    },
    exited,
    signalTree: (signal) => {
      if (!running()) return;
      // Listed before the command gets it: once it dies, its children are no longer below it.
      const below = listDescendants(pid);
      child.kill(signal);
      signalAll(below, signal);
    },
    killTree: () => {
      if (!running()) return 0;
      // Stopped first, so that it forks no more while its descendants are listed.
      child.kill('SIGSTOP');
      const below = listDescendants(pid);
      signalAll(below, 'SIGKILL');
      child.kill('SIGKILL');
      return below.length;
    },
  };
}

/** The signals a terminal sends its whole job (^C, a closed terminal) and a CI timeout: the waiting shell ignores them. */
const STOP_SIGNALS = 'INT TERM HUP';

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, signal);
    } catch {
      // Gone already.
    }
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}
