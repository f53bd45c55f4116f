// pmcstat measuring: allocate the -p/-s/-P/-S PMCs, attach the process PMCs
// to the command or the -t targets, start everything, and stop when the
// command exits, every target has exited, -l seconds have passed or a stop
// signal came. Counting PMCs print a row every -w seconds and at the end;
// sampling PMCs write the log (-O, or a temporary one analyzed or printed at
// the end, as pmcstat does without -O).
//
// Stop signals (INT, TERM, HUP alike): the first is passed on to the command,
// which is measured while it finishes, up to --grace seconds, then killed
// (SIGKILL, said on stderr); pmcstat then prints the final counts, closes the
// log and exits with the command's status. Without a command the first
// signal ends the measurement at once. A second signal stops all waiting (the
// command is killed at once, no analysis runs); a third exits at once.
import { attachTargets, findExecutable, findTargetProcesses, isPmcError, launchHeld, type LaunchedCommand, Libpmc, LocalModuleClient, parseEventSpec, PmcError, PmcMode } from '../lib/index.js';
import { type CountColumn, CountOutput, formatHeader, formatJson, formatRow, formatSummary, measured } from './count-output.js';
import { readSysctl } from '../os/procfs.js';
import { MeasurementLog } from './measurement-log.js';
import { hasOutputs, type PmcstatArgs } from './pmcstat-args.js';
import { onStopSignal, signalStatus } from './stop-signals.js';

interface Column extends CountColumn {
  id: number;
}

/** Seconds a command may take to exit after a stop signal was passed on to it (--grace). */
const DEFAULT_GRACE_SECONDS = 5;

/** The stop signals of one run, in order of arrival. */
class StopSignals {
  readonly received: NodeJS.Signals[] = [];
  /** Aborted at the first signal: a start-up step in progress gives up. */
  readonly starting = new AbortController();
  private waiters: { n: number; wake: (s: NodeJS.Signals) => void }[] = [];

  take(signal: NodeJS.Signals): void {
    this.received.push(signal);
    this.starting.abort();
    for (const w of this.waiters.filter((x) => x.n <= this.received.length)) w.wake(signal);
    this.waiters = this.waiters.filter((x) => x.n > this.received.length);
  }

  /** Resolves with the n-th signal, once there has been one. */
  nth(n: number): Promise<NodeJS.Signals> {
    if (this.received.length >= n) return Promise.resolve(this.received[n - 1]);
    return new Promise((wake) => this.waiters.push({ n, wake }));
  }

  get first(): NodeJS.Signals | undefined {
    return this.received[0];
  }
}

/** Resolves after `ms`; the timer holds the process only until `cancel`. */
function delay(ms: number): { done: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((r) => (timer = setTimeout(r, ms)));
  return { done, cancel: () => clearTimeout(timer) };
}

/** What top mode (run-top.ts) adds to a measurement. */
export interface MeasurementHooks {
  /** Ends the measurement as its end conditions do (top mode's q). */
  stop?: Promise<unknown>;
  /** Called once the PMCs run, with the library (top mode flushes the log through it). */
  started?(lib: Libpmc): void;
  /** Called when the measurement ends, before the PMCs stop and the log closes. */
  stopping?(): Promise<void>;
}

/** Runs the measurement; resolves with the exit status pmcstat exits with. */
export async function runMeasurement(args: PmcstatArgs, hooks: MeasurementHooks = {}): Promise<number> {
  const signals = new StopSignals();
  let cmd: LaunchedCommand | undefined;
  const log = new MeasurementLog(args.logFile);
  onStopSignal((signal) => {
    signals.take(signal);
    if (signals.received.length < 3) return;
    process.stderr.write(`pmcstat: ${signal} again: exiting at once, the log is not closed\n`);
    cmd?.killTree();
    log.removeTemp();
    process.exit(signalStatus(signal));
  });
  const grace = (args.grace ?? DEFAULT_GRACE_SECONDS) * 1000;

  /**
   * Ends the command: passes `signal` on and waits up to the grace period (or
   * until `hurry`), then SIGKILL. A command that never ran is killed at once.
   */
  const endCommand = async (c: LaunchedCommand, signal: NodeJS.Signals, hurry: Promise<NodeJS.Signals>): Promise<number> => {
    if (!c.resumed) c.killTree();
    else if (c.running) {
      c.signalTree(signal);
      const timer = delay(grace);
      const why = await Promise.race([c.exited.then(() => ''), timer.done.then(() => `did not exit within ${grace / 1000} s of ${signal}`), hurry.then((s) => `is still running at ${s}`)]);
      timer.cancel();
      if (why && c.running) {
        const below = c.killTree();
        // Said once its status shows it: a command that was already dying of the signal it was passed was not killed.
        if ((await c.exited) === 128 + 9) process.stderr.write(`pmcstat: the command ${why}: killed it${below > 0 ? ` and the ${below} processes below it` : ''} (SIGKILL)\n`);
      }
    }
    return c.exited;
  };

  // A command that cannot run and outputs that cannot be written fail before anything starts.
  if (args.command.length > 0) findExecutable(args.command[0]);
  const output = new CountOutput(args.output);
  const sampling = args.pmcs.some((p) => p.mode === PmcMode.TS || p.mode === PmcMode.SS);
  const lib = await Libpmc.init();
  let failed = false;
  let finished = false;
  try {
    await log.open(lib, sampling);

    const columns: Column[] = [];
    const noted = new Set<string>();
    const processPmcs: number[] = [];
    const allPmcs: number[] = [];
    for (const p of args.pmcs) {
      const event = parseEventSpec(p.spec).event;
      const options = {
        descendants: p.descendants,
        logProcExit: p.logProcExit,
        logProcCsw: p.logProcCsw,
        callchain: p.callchain,
        userCallchain: p.userCallchain,
        count: p.mode === PmcMode.TS || p.mode === PmcMode.SS ? p.rate : undefined,
        frequency: p.frequency,
      };
      const cpus = p.mode === PmcMode.TC || p.mode === PmcMode.TS ? [undefined] : p.cpus;
      for (const cpu of cpus) {
        const kind = p.mode === PmcMode.SC || p.mode === PmcMode.SS ? `system-mode (CPU ${cpu})` : 'process-mode';
        const id = await lib.allocate(p.spec, p.mode, { ...options, cpu }).catch((e: unknown) => {
          throw explain(e, `Cannot allocate ${kind} pmc with specification "${p.spec}"`, lib);
        });
        const userOnly = lib.describe(id)?.userOnly;
        if (userOnly && !noted.has(p.spec)) {
          noted.add(p.spec);
          process.stderr.write(`pmcstat: note: "${p.spec}": ${userOnly}\n`);
        }
        allPmcs.push(id);
        if (p.mode === PmcMode.TC || p.mode === PmcMode.TS) processPmcs.push(id);
        if (p.mode === PmcMode.TC || p.mode === PmcMode.SC) {
          columns.push({ id, event, mode: p.mode === PmcMode.TC ? 'TC' : 'SC', cpu, cumulative: p.cumulative, saved: 0n });
        }
      }
    }
    const targets = args.targets.flatMap((t) => findTargetProcesses(t));
    if (args.command.length > 0 && signals.first === undefined) {
      cmd = await launchHeld(args.command, { signal: signals.starting.signal }).catch((e: unknown) => {
        if (signals.first !== undefined && isPmcError(e, 'EINTR')) return undefined;
        throw e;
      });
      if (cmd) targets.push(cmd.pid);
    }
    if (signals.first === undefined) {
      await attachTargets(lib, processPmcs, targets).catch((e: unknown) => {
        throw explain(e, `Cannot attach to process${targets.length === 1 ? '' : 'es'} ${targets.join(', ')}`, lib);
      });
    }


    // Every target of every process PMC gone: the module tells the owner (hwpmc's SIGIO).
    let targetsGone!: () => void;
    const allTargetsGone = new Promise<void>((r) => (targetsGone = r));
    let lost = 0;
    // pmcd stopped (hwpmc unloaded: SIGBUS): nothing is measured any more; what follows fails saying so.
    let moduleGone!: () => void;
    const unloaded = new Promise<void>((r) => (moduleGone = r));
    lib.client.onSignal((s) => {
      if (s.signal === 'SIGBUS') moduleGone();
      else if (s.pmcId !== undefined) {
        if (++lost >= processPmcs.length) targetsGone();
      } else {
        log.failed(s.reason);
      }
    });

    await log.started(lib);
    const started: number[] = [];
    for (const id of allPmcs) {
      if (signals.first !== undefined) break;
      await lib.start(id);
      started.push(id);
    }
    // Elapsed time runs from when the PMCs run.
    const t0 = process.hrtime.bigint();
    // A person at a terminal gets grouped digits and a summary at the end; files and pipes get pmcstat's rows.
    const forPeople = !args.output && !args.json && process.stderr.isTTY === true;
    // The header says the PMCs run; it goes out before the command runs: an -o that cannot be written stops everything.
    if (columns.length > 0 && !args.json && (!forPeople || args.interval !== undefined)) output.header(formatHeader(columns, forPeople));
    // The steps above may not have left the event loop (a local module answers at once):
    // a signal that came meanwhile is heard now, before the command runs. Signals are
    // read in the loop's poll phase; if these steps ran in a poll callback, one
    // setImmediate would resolve in the same turn, before that phase comes again.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    hooks.started?.(lib);
    if (signals.first === undefined) cmd?.resume();

    // One op for every column: counters on the same thread or CPU are read together (PMCREADMANY).
    const readAll = (): Promise<bigint[]> => lib.readMany(columns.map((c) => c.id));
    const timers: NodeJS.Timeout[] = [];
    if (args.interval !== undefined && columns.length > 0 && !args.json) {
      timers.push(setInterval(async () => output.row(formatRow(columns, await readAll(), forPeople)), args.interval * 1000));
    }
    const statusLines = sampling && log.path !== undefined && process.stderr.isTTY && !args.top;
    if (statusLines) timers.push(setInterval(() => void log.statusLine(lib), 1000));

    const stops: Promise<unknown>[] = [signals.nth(1), unloaded];
    if (hooks.stop) stops.push(hooks.stop);
    if (cmd) stops.push(cmd.exited);
    else if (processPmcs.length > 0) stops.push(allTargetsGone);
    const duration = args.duration !== undefined ? delay(args.duration * 1000) : undefined;
    if (duration) stops.push(duration.done);
    if (!cmd && processPmcs.length === 0 && args.duration === undefined) {
      process.stderr.write('pmcstat: measuring system-wide until interrupted (-l secs sets a duration)\n');
    }
    let status = 0;
    if (signals.first === undefined) {
      // Waiting on -t targets holds no handle of its own: keep the event loop alive.
      const keepAlive = setInterval(() => undefined, 60_000);
      await Promise.race(stops);
      clearInterval(keepAlive);
    }
    duration?.cancel();
    // A stop signal: the command is measured while it finishes (or until it is killed).
    const signal = signals.first;
    if (signal !== undefined && cmd?.resumed) status = await endCommand(cmd, signal, signals.nth(2));
    else if (signal !== undefined && args.command.length > 0) status = signalStatus(signal); // the command never ran
    else if (cmd && !cmd.running) status = await cmd.exited;
    await hooks.stopping?.();
    for (const t of timers) clearInterval(t);
    if (statusLines) process.stderr.write('\n');

    for (const id of started) await lib.stop(id);
    const values = await readAll();
    const elapsed = process.hrtime.bigint() - t0;
    const exitStatus = cmd && !cmd.running ? status : undefined;
    if (columns.length > 0 && !args.json) output.row(forPeople ? formatSummary(columns, values, elapsed, measured(args.command, args.targets, exitStatus)) : formatRow(columns, values));
    if (args.json && columns.length > 0) output.json(formatJson(columns, values, elapsed, exitStatus));

    await log.close(lib);
    // -l ended the measurement of a command still running: it is not pmcstat's to leave behind.
    if (cmd?.running) await endCommand(cmd, 'SIGTERM', signals.nth(signals.received.length + 1));
    failed = log.error !== undefined || output.error !== undefined;
    if (sampling && log.path && log.error === undefined && (args.logFile === undefined || hasOutputs(args)) && signals.received.length < 2) {
      // Loaded only here: a run that writes its log and analyzes nothing does not load the analysis (report/, 30 modules).
      const { runAnalysis } = await import('./run-analysis.js');
      const analysis = await runAnalysis({ ...args, json: args.json && columns.length === 0 }, log.path);
      if (analysis !== 0 && status === 0) status = analysis;
    }
    finished = true;
    // A log or output that could not be written fails the run whatever the command's status: its
    // counts were printed, but what it recorded is lost (FreeBSD's pmcstat ends the run and exits 0).
    return failed ? 1 : status;
  } finally {
    if (cmd?.running) {
      cmd.killTree();
      await cmd.exited;
    }
    // After an error the owner's close may fail the same way (the log): the first error is the one to tell.
    await lib.close().catch((e: unknown) => {
      if (finished) throw e;
    });
    await log.release();
    output.close();
  }
}

/** A module error in context, with the kernel setting that explains a permission error. */
function explain(e: unknown, context: string, lib: Libpmc): unknown {
  if (!(e instanceof PmcError)) return e;
  // Through pmcd the administrator's tunables decide, and pmcd's error names them.
  if (!(lib.client instanceof LocalModuleClient)) return e.within(context);
  // In this process the kernel's own setting decides what an unprivileged user may measure: name it.
  const paranoid = readSysctl('kernel.perf_event_paranoid');
  const setting = '/proc/sys/kernel/perf_event_paranoid';
  if (e.code === 'EACCES' && Number(paranoid ?? 0) >= 2) {
    return new PmcError(e.code, `${context}: ${e.detail}: ${setting} is ${paranoid}: kernel mode (",os") needs root or CAP_PERFMON; ",usr" measures user mode`);
  }
  if (e.code === 'EPERM' && Number(paranoid ?? 0) >= 1) return new PmcError(e.code, `${context}: ${e.detail}; ${setting} is ${paranoid}`);
  return e.within(context);
}
