#!/usr/bin/env node
// pmccontrol(8): list classes and events (-L), the PMC rows of each CPU (-l),
// driver statistics (-s), and enable (-e) or disable (-d) rows. Options run
// in command-line order; -c chooses the CPUs of the -d and -e after it.
import { parseArgs } from 'node:util';
import { Libpmc, PmcError, PmcMode, RowDisposition } from '../lib/index.js';
import { numberArg, reportAndExit, UsageError } from './cli-error.js';
import { joinOptionValues } from './option-values.js';

const USAGE = `usage: pmccontrol [--local] -L | -l | -s | [-e pmc | -d pmc | -c cpu] ...
  -L        list PMC classes and their events (unavailable classes with the reason)
  -l        list the PMC rows of each CPU: class, state, disposition, owners, events
  -s        print driver statistics, then each owner's (pid, uid, PMCs, ops, log)
  --local   use a module in this process even when pmcd runs (as TSPMC_LOCAL=1)
  -c cpu    CPU ("*" for all) for the following -d and -e (default: all)
  -d pmc    disable PMC row pmc ("*" for all) on the selected CPUs (root only)
  -e pmc    enable PMC row pmc ("*" for all) on the selected CPUs (root only)
`;

const STAT_LABELS: [keyof Awaited<ReturnType<Libpmc['driverStats']>>, string][] = [
  ['intr_processed', 'interrupts processed:'],
  ['intr_ignored', 'non-PMC interrupts:'],
  ['intr_bufferfull', 'sampling stalls due to space shortages:'],
  ['syscalls', 'system calls:'],
  ['syscall_errors', 'system calls with errors:'],
  ['buffer_requests', 'buffer requests:'],
  ['buffer_requests_failed', 'buffer requests failed:'],
  ['log_sweeps', 'sampling log sweeps:'],
  ['log_records_lost', 'log records never written:'],
  ['samples_lost', 'samples lost by the kernel:'],
];

async function listClasses(lib: Libpmc): Promise<void> {
  for (const c of (await lib.cpuInfo()).classes) {
    if (!c.available) {
      process.stdout.write(`${c.name}\t(unavailable: ${c.unavailableReason ?? 'unknown reason'})\n`);
      continue;
    }
    process.stdout.write(`${c.name}\n`);
    for (const name of await lib.eventNamesOfClass(c.classId)) process.stdout.write(`\t${name}\n`);
  }
}

async function listRows(lib: Libpmc): Promise<void> {
  const { ncpu, npmc, classes } = await lib.cpuInfo();
  process.stdout.write(`${ncpu} GENERIC CPUs present, with ${npmc} PMCs per CPU\n`);
  const className = new Map(classes.map((c) => [c.classId, c.name]));
  for (let cpu = 0; cpu < ncpu; cpu++) {
    let rows;
    try {
      rows = await lib.pmcInfo(cpu);
    } catch (e) {
      if (e instanceof PmcError && e.code === 'ENXIO') continue; // not online
      throw e;
    }
    process.stdout.write(`#CPU ${cpu}:\n#N  NAME             CLASS  STATE    ROW-DISP\n`);
    rows.forEach((r, n) => {
      let line = ` ${String(n).padEnd(2)} ${r.name.padEnd(16)} ${(className.get(r.classId) ?? '?').padEnd(6)} ${(r.enabled ? 'ENABLED' : 'DISABLED').padEnd(8)} ${RowDisposition[r.rowDisposition].padEnd(10)}`;
      // Every owner's PMC on the row (pmcd serves them all), one after the other.
      line += r.holders
        .map((h) => {
          let held = ` (pid ${h.ownerPid}) ${h.eventName.padEnd(32)}`;
          if (h.mode === PmcMode.SS || h.mode === PmcMode.TS) held += ` (reload count ${h.reloadCount})`;
          return held;
        })
        .join(';');
      process.stdout.write(line.trimEnd() + '\n');
    });
  }
}

async function printStats(lib: Libpmc): Promise<void> {
  const s = await lib.driverStats();
  for (const [key, label] of STAT_LABELS) process.stdout.write(`${label.padEnd(40)} ${s[key]}\n`);
  const owners = await lib.ownerStats();
  if (owners.length === 0) return;
  process.stdout.write(`\n#OWNER PID   UID     SS  SC  TS  TC RUNNING       OPS    ERRORS    LOG-BYTES LOG-DROPS\n`);
  for (const o of owners) {
    const n = (v: number | string, w: number): string => String(v).padStart(w);
    process.stdout.write(
      ` ${n(o.pid, 9)} ${n(o.uid, 5)} ${n(o.pmcs.SS, 3)} ${n(o.pmcs.SC, 3)} ${n(o.pmcs.TS, 3)} ${n(o.pmcs.TC, 3)} ${n(o.running, 7)} ${n(o.ops, 9)} ${n(o.opErrors, 9)} ${n(o.log?.written ?? '-', 12)} ${n(o.log?.bufferRequestsFailed ?? '-', 9)}\n`,
    );
  }
}

/** `*` or a number in [0, limit). */
function selection(option: string, text: string, limit: number, what: string): number[] {
  if (text === '*') return Array.from({ length: limit }, (_, i) => i);
  const n = numberArg(option, text, { min: 0, integer: true });
  if (n >= limit) throw new UsageError(`option ${option}: ${what} id too large (${n}; the machine has ${limit})`);
  return [n];
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--local')) {
    process.env.TSPMC_LOCAL = '1';
    argv = argv.filter((a) => a !== '--local');
  }
  let tokens: { kind: string; name?: string; rawName?: string; value?: string }[];
  try {
    tokens = parseArgs({
      args: joinOptionValues(argv, (letter) => 'cde'.includes(letter)),
      options: {
        c: { type: 'string', short: 'c', multiple: true },
        d: { type: 'string', short: 'd', multiple: true },
        e: { type: 'string', short: 'e', multiple: true },
        l: { type: 'boolean', short: 'l', multiple: true },
        L: { type: 'boolean', short: 'L', multiple: true },
        s: { type: 'boolean', short: 's', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
      tokens: true,
    }).tokens as typeof tokens;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  const options = tokens.filter((t) => t.kind === 'option');
  if (options.length === 0 || options.some((t) => t.name === 'help')) {
    process.stdout.write(USAGE);
    if (options.length === 0) throw new UsageError('no option given');
    return;
  }
  const lib = await Libpmc.init();
  try {
    const { ncpu, npmc } = await lib.cpuInfo();
    let cpus = Array.from({ length: ncpu }, (_, i) => i);
    // Check the whole command line before changing anything.
    for (const t of options) {
      if (t.name === 'c') selection(t.rawName!, t.value!, ncpu, 'CPU');
      if (t.name === 'd' || t.name === 'e') selection(t.rawName!, t.value!, npmc, 'PMC');
    }
    for (const t of options) {
      switch (t.name) {
        case 'L':
          await listClasses(lib);
          break;
        case 'l':
          await listRows(lib);
          break;
        case 's':
          await printStats(lib);
          break;
        case 'c':
          cpus = selection(t.rawName!, t.value!, ncpu, 'CPU');
          break;
        case 'd':
        case 'e': {
          const enable = t.name === 'e';
          for (const cpu of cpus) {
            for (const row of selection(t.rawName!, t.value!, npmc, 'PMC')) {
              try {
                await (enable ? lib.enable(cpu, row) : lib.disable(cpu, row));
              } catch (e) {
                // A CPU that is not online has no rows to change (pmccontrol skips it).
                if (e instanceof PmcError && e.code === 'ENXIO' && cpus.length > 1) continue;
                if (e instanceof PmcError) throw e.within(`${enable ? 'Enable' : 'Disable'} of PMC ${row} on CPU ${cpu} failed`);
                throw e;
              }
            }
          }
          break;
        }
      }
    }
  } finally {
    await lib.close();
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => reportAndExit('pmccontrol', e),
);
