// pmcstat measuring: allocate the -p/-s/-P/-S PMCs, attach the process PMCs
// to the command or the -t targets, start everything, and stop when the
// command exits, every target has exited, -l seconds have passed or the
// user interrupts. Counting PMCs print a row every -w seconds and at the
// end; sampling PMCs write the log (-O, or a temporary one analyzed or
// printed at the end, as pmcstat does without -O).
import { closeSync, createWriteStream, fstatSync, mkdtempSync, openSync, rmSync, type WriteStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachTargets, findTargetProcesses, launchStopped, type LaunchedCommand, Libpmc, parseEventSpec, PmcError, PmcMode } from '../lib/index.js';
import { type CountColumn, formatHeader, formatJson, formatRow, formatSummary, measured } from './count-output.js';
import type { PmcstatArgs } from './pmcstat-args.js';
import { hasOutputs, runAnalysis } from './run-analysis.js';

interface Column extends CountColumn {
  id: number;
}

const MODE_NAME = { [PmcMode.TC]: 'TC', [PmcMode.SC]: 'SC', [PmcMode.TS]: 'TS', [PmcMode.SS]: 'SS' } as const;

/** Runs the measurement; resolves with the exit status pmcstat exits with. */
/** What top mode (run-top.ts) adds to a measurement. */
export interface MeasurementHooks {
  /** Ends the measurement as its end conditions do (top mode's q). */
  stop?: Promise<unknown>;
  /** Called once the PMCs run, with the library (top mode flushes the log through it). */
  started?(lib: Libpmc): void;
  /** Called when the measurement ends, before the PMCs stop and the log closes. */
  stopping?(): Promise<void>;
}

export async function runMeasurement(args: PmcstatArgs, hooks: MeasurementHooks = {}): Promise<number> {
  const sampling = args.pmcs.some((p) => p.mode === PmcMode.TS || p.mode === PmcMode.SS);
  const lib = await Libpmc.init();
  let cmd: LaunchedCommand | undefined;
  let out: WriteStream | undefined;
  let tmpDir: string | undefined;
  let logFd: number | undefined;
  let logPath: string | undefined;
  let logPeer: Socket | undefined;
  const remote = args.logFile === undefined ? undefined : logHost(args.logFile);
  try {
    if (remote) {
      // -O host:port: the log goes to a TCP peer (nc -l port > log), as FreeBSD's pmcstat sends it.
      logPeer = await connectTcp(remote.host, remote.port);
      await lib.configureLogfile(logPeer);
    } else if (sampling || args.logFile !== undefined) {
      if (args.logFile === undefined) tmpDir = mkdtempSync(join(tmpdir(), 'pmcstat-'));
      logPath = args.logFile ?? join(tmpDir!, 'pmcstat.log');
      logFd = openSync(logPath, 'w', 0o644);
      // The log comes first so that it records every allocation.
      await lib.configureLogfile(logFd);
    }

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
        const id = await lib.allocate(p.spec, MODE_NAME[p.mode], { ...options, cpu }).catch((e: unknown) => {
          if (!(e instanceof PmcError)) throw e;
          const kind = p.mode === PmcMode.SC || p.mode === PmcMode.SS ? `system-mode (CPU ${cpu})` : 'process-mode';
          throw e.within(`Cannot allocate ${kind} pmc with specification "${p.spec}"`);
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
    if (args.command.length > 0) {
      cmd = await launchStopped(args.command);
      targets.push(cmd.pid);
    }
    await attachTargets(lib, processPmcs, targets);

    // Every target of every process PMC gone: the module tells the owner (hwpmc's SIGIO).
    let targetsGone!: () => void;
    const allTargetsGone = new Promise<void>((r) => (targetsGone = r));
    let lost = 0;
    lib.client.onSignal((s) => {
      if (s.pmcId !== undefined && ++lost >= processPmcs.length) targetsGone();
      if (s.pmcId === undefined) process.stderr.write(`pmcstat: WARNING: ${s.reason}\n`);
    });

    const statsBefore = await lib.driverStats();
    for (const id of allPmcs) await lib.start(id);
    const t0 = process.hrtime.bigint();
    hooks.started?.(lib);
    cmd?.resume();

    if (args.output) out = createWriteStream(args.output);
    const print = (line: string): void => {
      if (!args.json) (out ?? process.stderr).write(line + '\n');
    };
    const readAll = (): Promise<bigint[]> => Promise.all(columns.map((c) => lib.read(c.id)));
    // A person at a terminal gets grouped digits and a summary at the end; files and pipes get pmcstat's rows.
    const forPeople = !args.output && !args.json && process.stderr.isTTY === true;
    if (columns.length > 0 && (!forPeople || args.interval !== undefined)) print(formatHeader(columns, forPeople));
    const timers: NodeJS.Timeout[] = [];
    if (args.interval !== undefined && columns.length > 0) {
      timers.push(setInterval(async () => print(formatRow(columns, await readAll(), forPeople)), args.interval * 1000));
    }
    if (sampling && logFd !== undefined && process.stderr.isTTY && !args.top) timers.push(setInterval(() => void statusLine(lib, logFd!), 1000));

    const stops: Promise<unknown>[] = [new Promise((r) => process.once('SIGINT', r))];
    if (hooks.stop) stops.push(hooks.stop);
    if (cmd) stops.push(cmd.exited);
    else if (processPmcs.length > 0) stops.push(allTargetsGone);
    if (args.duration !== undefined) stops.push(new Promise((r) => setTimeout(r, args.duration! * 1000)));
    if (!cmd && processPmcs.length === 0 && args.duration === undefined) {
      process.stderr.write('pmcstat: measuring system-wide until interrupted (-l secs sets a duration)\n');
    }
    // Waiting on -t targets or a duration holds no handle of its own: keep the event loop alive.
    const keepAlive = setInterval(() => undefined, 60_000);
    await Promise.race(stops);
    await hooks.stopping?.();
    clearInterval(keepAlive);
    for (const t of timers) clearInterval(t);
    if (sampling && process.stderr.isTTY && !args.top) process.stderr.write('\n');

    for (const id of allPmcs) await lib.stop(id);
    const values = await readAll();
    const elapsed = process.hrtime.bigint() - t0;
    const exitStatus = cmd ? await Promise.race([cmd.exited, Promise.resolve(undefined)]) : undefined;
    if (columns.length > 0) print(forPeople ? formatSummary(columns, values, elapsed, measured(args.command, args.targets, exitStatus)) : formatRow(columns, values));
    if (args.json && columns.length > 0) process.stdout.write(formatJson(columns, values, elapsed, exitStatus) + '\n');

    if (logFd !== undefined || logPeer) {
      await lib.closeLogfile();
      warnAboutLosses(statsBefore, await lib.driverStats());
    }
    let status = exitStatus ?? 0;
    if (sampling && logPath && (args.logFile === undefined || hasOutputs(args))) {
      const analysis = await runAnalysis({ ...args, json: args.json && columns.length === 0 }, logPath);
      if (analysis !== 0 && status === 0) status = analysis;
    }
    return status;
  } finally {
    if (cmd && cmd.child.exitCode === null && cmd.child.signalCode === null) cmd.child.kill('SIGTERM');
    await lib.close();
    if (logFd !== undefined) closeSync(logFd);
    if (logPeer) await new Promise<void>((r) => logPeer!.end(() => r()));
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
    if (out) await new Promise((r) => out!.end(r));
  }
}

/** `host:port` for -O, as pmcstat reads it: a host that starts with neither '.' nor '/'. */
function logHost(text: string): { host: string; port: number } | undefined {
  const m = /^([^./][^:]*):(\d+)$/.exec(text);
  return m && Number(m[2]) < 65536 ? { host: m[1], port: Number(m[2]) } : undefined;
}

function connectTcp(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    s.once('connect', () => resolve(s));
    s.once('error', (e: NodeJS.ErrnoException) => reject(new PmcError(e.code ?? 'EIO', `option -O: cannot connect to ${host}:${port}: ${e.message}`)));
  });
}

/** While recording to a terminal: samples, drops and log size on one line. */
async function statusLine(lib: Libpmc, logFd: number): Promise<void> {
  const s = await lib.driverStats();
  const size = fstatSync(logFd).size;
  process.stderr.write(`\rpmcstat: ${s.intr_processed} samples, ${s.intr_bufferfull} dropped, log ${(size / 1048576).toFixed(1)} MiB `);
}

/** pmcstat's end-of-run warnings, from the change in driver statistics. */
function warnAboutLosses(before: Awaited<ReturnType<Libpmc['driverStats']>>, after: Awaited<ReturnType<Libpmc['driverStats']>>): void {
  const stalls = after.intr_bufferfull - before.intr_bufferfull;
  const discarded = after.buffer_requests_failed - before.buffer_requests_failed;
  const s = (n: number): string => (n === 1 ? '' : 's');
  if (stalls > 0) {
    process.stderr.write(`WARNING: sampling was paused at least ${stalls} time${s(stalls)}.\nPlease consider tuning the "kern.hwpmc.nsamples" tunable.\n`);
  }
  if (discarded > 0) {
    process.stderr.write(`WARNING: at least ${discarded} event${s(discarded)} were discarded while running.\nPlease consider tuning the "kern.hwpmc.nbuffers" tunable.\n`);
  }
}
