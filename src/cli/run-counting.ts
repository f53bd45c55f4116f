// pmcstat's counting mode: allocate the -p and -s PMCs, attach the process
// PMCs to the command or the -t targets, start everything, print a row every
// -w seconds, and a last row when the command exits, every target has
// exited, -l seconds have passed, or the user interrupts.
import { createWriteStream, type WriteStream } from 'node:fs';
import { findTargetProcesses, launchStopped, type LaunchedCommand, Libpmc, parseEventSpec, PmcMode } from '../lib/index.js';
import { type CountColumn, formatHeader, formatJson, formatRow } from './count-output.js';
import type { PmcstatArgs } from './pmcstat-args.js';

interface Column extends CountColumn {
  id: number;
}

/** Runs the measurement; resolves with the exit status pmcstat should exit with. */
export async function runCounting(args: PmcstatArgs): Promise<number> {
  const lib = await Libpmc.init();
  let cmd: LaunchedCommand | undefined;
  let out: WriteStream | undefined;
  try {
    const columns: Column[] = [];
    for (const p of args.pmcs) {
      const event = parseEventSpec(p.spec).event;
      if (p.mode === PmcMode.TC) {
        const id = await lib.allocate(p.spec, 'TC', { descendants: p.descendants, logProcExit: p.logProcExit, logProcCsw: p.logProcCsw });
        columns.push({ id, event, mode: 'TC', cumulative: p.cumulative, saved: 0n });
      } else {
        for (const cpu of p.cpus) {
          const id = await lib.allocate(p.spec, 'SC', { cpu });
          columns.push({ id, event, mode: 'SC', cpu, cumulative: p.cumulative, saved: 0n });
        }
      }
    }
    const processColumns = columns.filter((c) => c.mode === 'TC');
    const targets = args.targets.flatMap((t) => findTargetProcesses(t));
    if (args.command.length > 0) {
      cmd = await launchStopped(args.command);
      targets.push(cmd.pid);
    }
    for (const c of processColumns) for (const pid of targets) await lib.attach(c.id, pid);

    // Every process target gone: hwpmc tells the owner with SIGIO.
    let targetsGone!: () => void;
    const allTargetsGone = new Promise<void>((r) => (targetsGone = r));
    let lost = 0;
    lib.client.onSignal(() => {
      if (++lost >= processColumns.length) targetsGone();
    });

    for (const c of columns) await lib.start(c.id);
    const t0 = process.hrtime.bigint();
    cmd?.resume();

    const print = (line: string): void => {
      if (!args.json) (out ?? process.stderr).write(line + '\n');
    };
    if (args.output) out = createWriteStream(args.output);
    const readAll = (): Promise<bigint[]> => Promise.all(columns.map((c) => lib.read(c.id)));
    print(formatHeader(columns));
    const timer = args.interval === undefined ? undefined : setInterval(async () => print(formatRow(columns, await readAll())), args.interval * 1000);

    const stops: Promise<unknown>[] = [new Promise((r) => process.once('SIGINT', r))];
    if (cmd) stops.push(cmd.exited);
    else if (processColumns.length > 0) stops.push(allTargetsGone);
    if (args.duration !== undefined) stops.push(new Promise((r) => setTimeout(r, args.duration! * 1000)));
    if (!cmd && processColumns.length === 0 && args.duration === undefined) {
      process.stderr.write('pmcstat: counting system-wide until interrupted (-l secs sets a duration)\n');
    }
    await Promise.race(stops);
    clearInterval(timer);

    for (const c of columns) await lib.stop(c.id);
    const values = await readAll();
    const elapsed = process.hrtime.bigint() - t0;
    const exitStatus = cmd ? await Promise.race([cmd.exited, Promise.resolve(undefined)]) : undefined;
    print(formatRow(columns, values));
    if (args.json) process.stdout.write(formatJson(columns, values, elapsed, exitStatus) + '\n');
    return exitStatus ?? 0;
  } finally {
    if (cmd && cmd.child.exitCode === null && cmd.child.signalCode === null) cmd.child.kill('SIGTERM');
    await lib.close();
    if (out) await new Promise((r) => out!.end(r));
  }
}
