// Shared by the tests of exits, descendants and threads: the proc-workload
// fixture as a child whose lines can be awaited, perf stat attached to the
// same process as the reference count, and busy CPUs.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { buildC } from './cli-fixture.js';
import { spinner } from './spinner.js';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/**
 * The time the host took this machine's CPUs from it so far (steal, in
 * /proc/stat), in ns. task-clock runs on the CPU's clock, which goes on while
 * the host runs something else; a process's CPU clock (utime + stime,
 * CLOCK_PROCESS_CPUTIME_ID) leaves steal out. Over an interval the two can
 * differ by at most the machine's steal in it.
 */
export function machineStealNs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
  return Number(cpu[8]) * (1e9 / CLK_TCK);
}

/** Builds test/fixtures/proc-workload.c into `dir`. */
export function buildWorkload(dir: string): string {
  return buildC(dir, 'proc-workload.c', 'proc-workload', ['-pthread']);
}

/** Now on CLOCK_MONOTONIC in ns, the clock the workload prints its times on. */
export function monotonicNs(): number {
  return Number(process.hrtime.bigint());
}

/** Lines of a stream, awaited one by one. */
export class Lines {
  private readonly queue: string[] = [];
  private waiters: ((line: string | undefined) => void)[] = [];
  private ended = false;

  constructor(stream: Readable) {
    const rl = createInterface({ input: stream });
    rl.on('line', (line) => {
      const w = this.waiters.shift();
      if (w) w(line);
      else this.queue.push(line);
    });
    rl.on('close', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
  }

  /** The next line, or undefined at the end of the stream. */
  next(): Promise<string | undefined> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next line starting with `word`, skipping others; throws at the end of the stream, or after `guardMs` (a hang). */
  expect(word: string, guardMs = 30_000): Promise<string[]> {
    const find = async (): Promise<string[]> => {
      for (;;) {
        const line = await this.next();
        if (line === undefined) throw new Error(`the stream ended before a "${word}" line`);
        const fields = line.split(' ');
        if (fields[0] === word) return fields.slice(1);
      }
    };
    return hangGuard(find(), guardMs, `waiting for a "${word}" line`);
  }
}

/** Every child started here, killed by `killAll` (in an after hook). */
const started: ChildProcess[] = [];

export function track<T extends ChildProcess>(c: T): T {
  started.push(c);
  return c;
}

export function killAll(): void {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** The workload fixture, started with `args`, its stdout as lines; it waits at its gate after "ready PID". */
export class Workload {
  readonly lines: Lines;
  readonly exited: Promise<unknown>;

  constructor(
    readonly child: ChildProcess,
    stdout: Readable,
    private readonly stdin: Writable,
  ) {
    this.lines = new Lines(stdout);
    this.exited = child.exitCode !== null ? Promise.resolve() : once(child, 'exit');
  }

  static start(binary: string, args: string[]): Workload {
    const child = track(spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
    return new Workload(child, child.stdout!, child.stdin!);
  }

  /** "ready PID": the workload's pid. */
  async ready(): Promise<number> {
    return Number((await this.lines.expect('ready'))[0]);
  }

  /** Let it past its gate. */
  go(): void {
    this.stdin.write('go\n');
  }

  /** Close its stdin: modes that wait for the end of their input exit. */
  finish(): void {
    this.stdin.end();
  }
}

/** perf stat counting task-clock on `pid` and its future descendants, enabled before this resolves. */
export async function perfStat(pid: number): Promise<{ count: Promise<number> }> {
  const perf = track(
    spawn('perf', ['stat', '-e', 'task-clock', '-x,', '--delay=-1', '--control=fd:3,4', '-p', String(pid)], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    }),
  );
  let stderr = '';
  perf.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = once(perf, 'close');
  (perf.stdio[3] as Writable).write('enable\n');
  const ack = once(perf.stdio[4] as Readable, 'data');
  await Promise.race([ack, closed.then(() => Promise.reject(new Error(`perf stat ended before it was enabled: ${stderr}`)))]);
  const count = closed.then(() => {
    // "220.38,msec,task-clock,220383074,100.00,..." : the value in ms.
    const line = stderr.split('\n').find((l) => /,task-clock,/.test(l));
    if (!line) throw new Error(`perf stat printed no task-clock count: ${stderr}`);
    return Number(line.split(',')[0]) * 1e6;
  });
  return { count };
}

/** `n` niced processes spinning until stopped: CPUs busy as on a loaded machine. */
export function busyCpus(n: number): () => Promise<void> {
  const burners = Array.from({ length: n }, () => track(spinner('nice', '-n', '19')));
  return async () => {
    for (const b of burners) b.kill('SIGKILL');
    await Promise.all(burners.map((b) => (b.exitCode !== null || b.signalCode !== null ? undefined : once(b, 'exit'))));
  };
}

/** A promise that rejects after `ms` with `what`: a hang guard, never a timing assertion. */
export function hangGuard<T>(p: Promise<T>, ms: number, what: string, onHang?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onHang?.();
      reject(new Error(`${what}: still running after ${ms / 1000} s (a hang)`));
    }, ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}
