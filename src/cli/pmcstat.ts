#!/usr/bin/env node
// pmcstat(8): count or sample events of commands, processes and CPUs, and
// analyze sampling logs.
import { reportAndExit } from './cli-error.js';
import { parsePmcstatArgs, PMCSTAT_USAGE } from './pmcstat-args.js';
import { runCounting } from './run-counting.js';

async function main(argv: string[]): Promise<number> {
  const args = parsePmcstatArgs(argv);
  if (args.help) {
    process.stdout.write(PMCSTAT_USAGE);
    return 0;
  }
  return runCounting(args);
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (e) => reportAndExit('pmcstat', e),
);
