#!/usr/bin/env node
// pmcd(8): the PMC module as a root service on a Unix socket, so that every
// process of the machine shares one module, as hwpmc is one kernel module:
// one row table, one set of owners, hwpmc's policy for every user.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_METRICS_EVENTS, parseMetricsAddress, PmcdMetrics } from '../daemon/metrics.js';
import { DEFAULT_SOCKET, PMCD_STOP_BOUND_MS, PmcdServer } from '../daemon/server.js';
import { loadModule } from '../module/load.js';
import { DEFAULT_CONFIG_FILE, parseConfig } from '../module/tunables.js';
import { dieWithParent } from '../os/libc.js';
import { reportAndExit, UsageError } from './cli-error.js';

const USAGE = `usage: pmcd [--socket path] [--metrics [host:]port] [--config file]
  --socket path       Unix socket to serve (default ${DEFAULT_SOCKET}; config pmcd.socket)
  --metrics [host:]port  serve Prometheus metrics on /metrics (host default 127.0.0.1; config pmcd.metrics)
  --config file       tunables and pmcd settings (default $TSPMC_CONFIG or ${DEFAULT_CONFIG_FILE})
Settings in the config file: pmcd.socket, pmcd.metrics, pmcd.metrics_events (events counted
system-wide per CPU for the metrics; default ${DEFAULT_METRICS_EVENTS.join(',')}), and the
module's tunables (kern.hwpmc.*, security.bsd.unprivileged_syspmcs,
kern.hwpmc.unprivileged_kernel_callchains).
Signals: TERM, INT and HUP release every PMC, close every log with CLOSELOG and remove the
socket (the same signal twice: exit at once); HUP does not reload the config file.
`;

async function main(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { socket: { type: 'string' }, metrics: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const configFile = values.config ?? process.env.TSPMC_CONFIG ?? DEFAULT_CONFIG_FILE;
  let config = new Map<string, string>();
  try {
    config = parseConfig(readFileSync(configFile, 'utf8'));
  } catch (e) {
    if (values.config !== undefined) throw new UsageError(`option --config: cannot read ${configFile}: ${(e as Error).message}`);
  }
  const log = (line: string): void => void process.stderr.write(`pmcd: ${line}\n`);
  const metricsText = values.metrics ?? config.get('pmcd.metrics');
  const metricsAddress = metricsText === undefined ? undefined : parseMetricsAddress(metricsText);
  const events = (config.get('pmcd.metrics_events') ?? DEFAULT_METRICS_EVENTS.join(',')).split(',').map((e) => e.trim()).filter(Boolean);

  // Signals are pmcd's from the start: one that comes while pmcd starts ends it once started (or before, if
  // nothing is held yet) as cleanly as one that comes while owners sample.
  const stopping = catchStopSignals(log);
  if (process.geteuid?.() !== 0) log(`running as uid ${process.geteuid?.()}, not root: owners get only what this user may measure`);
  const module = loadModule({ configFile: values.config }, { serving: true });
  if (stopping.requested) process.exit(0);
  const server = await PmcdServer.start({ socketPath: values.socket ?? config.get('pmcd.socket') ?? DEFAULT_SOCKET, module, log });
  const metrics = !stopping.requested && metricsAddress ? await PmcdMetrics.start({ module, ...metricsAddress, events, log }) : undefined;
  stopping.onStop(async () => {
    await metrics?.stop();
    await server.stop();
    process.exit(0);
  });
  if (stopping.requested) return;
  const t = module.tunables;
  log(
    `serving ${server.socketPath}${metrics ? `, metrics on http://${metrics.address.host}:${metrics.address.port}/metrics` : ''}` +
      ` (unprivileged_syspmcs=${Number(t.unprivileged_syspmcs)} unprivileged_kernel_callchains=${Number(t.unprivileged_kernel_callchains)})`,
  );
}

/**
 * TERM (systemd, CI timeouts), INT and HUP alike: release every PMC, close every log with CLOSELOG.
 * The module gives up logs whose readers take nothing; should anything else wait, pmcd still ends
 * within PMCD_STOP_BOUND_MS. The same signal again ends pmcd at once; another one is the same
 * request delivered twice (a terminal's SIGINT and the parent's death, below) and changes nothing.
 */
function catchStopSignals(log: (line: string) => void): { readonly requested?: string; onStop(fn: () => Promise<void>): void } {
  let first: string | undefined;
  let action: (() => Promise<void>) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (first !== undefined) {
      if (signal !== first) return log(`${signal} too: already stopping`);
      log(`${signal} again: exiting now`);
      process.exit(1);
    }
    first = signal;
    log(`${signal}: releasing every owner`);
    setTimeout(() => {
      log(`still stopping after ${PMCD_STOP_BOUND_MS / 1000} s: exiting now`);
      process.exit(1);
    }, PMCD_STOP_BOUND_MS).unref();
    void action?.();
  };
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, onSignal);
  // npm exec (npx pmcd) and npm run pass a signal to the shell they run pmcd in, which dies without
  // passing it on: pmcd would outlive them, orphaned. Run by npm, pmcd takes its shell's death as SIGTERM.
  if (process.env.npm_lifecycle_event !== undefined) {
    const parent = process.ppid;
    dieWithParent(constants.signals.SIGTERM);
    if (process.ppid !== parent) onSignal('SIGTERM');
  }
  return {
    get requested() {
      return first;
    },
    onStop(fn) {
      action = fn;
      if (first !== undefined) void fn();
    },
  };
}

main(process.argv.slice(2)).catch((e) => reportAndExit('pmcd', e));
