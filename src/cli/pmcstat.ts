#!/usr/bin/env node
// pmcstat(8): count or sample events of commands, processes and CPUs, and
// analyze sampling logs.
import { onStopSignal, signalStatus } from './stop-signals.js';
import './v8-tuning.js';
import { closeSync, openSync } from 'node:fs';
import { fileError, reportAndExit } from './cli-error.js';
import { useCodeCache } from './code-cache.js';
import { isSamplingMode } from '../module/pmc-types.js';
import { parsePmcstatArgs, PMCSTAT_USAGE } from './pmcstat-args.js';

async function main(argv: string[]): Promise<number> {
  // --local: the module in this process even when pmcd runs (as TSPMC_LOCAL=1).
  if (argv.includes('--local')) {
    process.env.TSPMC_LOCAL = '1';
    argv = argv.filter((a) => a !== '--local');
  }
  const args = parsePmcstatArgs(argv);
  for (const w of args.warnings) process.stderr.write(`pmcstat: warning: ${w}\n`);
  if (args.help) {
    process.stdout.write(PMCSTAT_USAGE);
    return 0;
  }
  // Before the chunks a run loads on demand: they come with the code an earlier run of its kind compiled.
  useCodeCache(args.pmcs.some((p) => isSamplingMode(p.mode)) ? 'sampling' : 'counting');
  if (args.listEvents) return (await import('./pmcstat-events.js')).listEvents();
  if (args.describe !== undefined) return (await import('./pmcstat-events.js')).describeEvent(args.describe);
  if (args.top) return (await import('./run-top.js')).runTop(args);
  // Analysis needs no module: load each side only when it runs (-R starts faster without FFI).
  if (args.analyze !== undefined) {
    // Analysis has nothing to finish cleanly: a stop signal ends it.
    onStopSignal((signal) => process.exit(signalStatus(signal)));
    if (args.output !== undefined) checkWritable('-o', args.output);
    return (await import('./run-analysis.js')).runAnalysis(args, args.analyze);
  }
  return (await import('./run-measurement.js')).runMeasurement(args);
}

/** An output file that cannot be opened (or is a directory) fails before anything is written. */
function checkWritable(option: string, path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (e) {
    throw fileError(option, path, 'cannot open for writing', e);
  }
  closeSync(fd);
}

// A reader that goes away (pmcstat -R log | head) ends the output, not with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? 0 : 1));

// Output still queued for a pipe is lost to an immediate exit: leave once stdout and stderr took it all.
const exitAfterOutput = (status: number): void => void process.stdout.write('', () => process.stderr.write('', () => process.exit(status)));

main(process.argv.slice(2)).then(
  (status) => exitAfterOutput(status),
  (e) => reportAndExit('pmcstat', e),
);
