// SIGINT (^C), SIGTERM (a CI job's timeout) and SIGHUP (a closed terminal)
// all ask pmcstat to stop. Node's default for each is to die at once, which
// would leave the log without CLOSELOG, counts unprinted and a launched
// command running: pmcstat's first import installs the handlers, and signals
// that arrive before a run takes them over are kept for it.
import { constants } from 'node:os';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

let handler: ((signal: NodeJS.Signals) => void) | undefined;
const early: NodeJS.Signals[] = [];
for (const s of STOP_SIGNALS) process.on(s, (signal: NodeJS.Signals) => (handler ? handler(signal) : early.push(signal)));

/** From now on `fn` hears every stop signal; those received already come first. */
export function onStopSignal(fn: (signal: NodeJS.Signals) => void): void {
  handler = fn;
  for (const s of early.splice(0)) fn(s);
}

/** A shell's status for a process ended by `signal`. */
export function signalStatus(signal: NodeJS.Signals): number {
  return 128 + ((constants.signals as Record<string, number>)[signal] ?? 0);
}
