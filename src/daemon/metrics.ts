// pmcd --metrics: Prometheus metrics over HTTP (prom-client), read from the
// module at each scrape: its statistics (owners, PMCs by mode, rows in use,
// samples, drops, ops) and system counting PMCs pmcd owns itself, one per
// configured event per online CPU. This is how a fleet sees its PMCs: many
// pmcd, one Prometheus. Loopback unless the address says otherwise.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { readCredentials } from '../os/procfs.js';
import type { Caller } from '../module/caller.js';
import type { PmcModule } from '../module/pmc-module.js';
import { PmcFlags, type PmcId, PmcMode, PmcOp } from '../module/pmc-types.js';
import { PmcError } from '../pmc-error.js';

export const DEFAULT_METRICS_EVENTS = ['context-switches', 'page-faults', 'cpu-migrations'];

export interface MetricsOptions {
  module: PmcModule;
  host: string;
  port: number;
  /** Events counted system-wide on every online CPU (pmcd.metrics_events). */
  events: readonly string[];
  log: (line: string) => void;
}

interface SystemPmc {
  id: PmcId;
  event: string;
  cpu: number;
}

/** "[host:]port": loopback when no host is given; port 0 takes any free port (pmcd logs which). */
export function parseMetricsAddress(text: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d+)$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port < 65536)) throw new PmcError('EINVAL', `metrics address "${text}": expected [host:]port, e.g. 127.0.0.1:9464`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1'), port };
}

export class PmcdMetrics {
  private readonly pmcs: SystemPmc[] = [];
  private constructor(
    private readonly module: PmcModule,
    private readonly caller: Caller,
    private readonly http: Server,
    readonly address: { host: string; port: number },
  ) {}

  static async start(o: MetricsOptions): Promise<PmcdMetrics> {
    const creds = readCredentials(process.pid);
    if (!creds) throw new PmcError('ESRCH', 'cannot read /proc/self/status');
    // pmcd's own PMCs belong to session 0 (client sessions count from 1).
    const caller: Caller = { pid: process.pid, creds, session: 0 };
    const registry = new Registry();
    const http = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404).end('pmcd serves /metrics\n');
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (e: Error) => res.writeHead(500).end(`${e.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(o.port, o.host, () => resolve());
    });
    const addr = http.address();
    const m = new PmcdMetrics(o.module, caller, http, { host: o.host, port: typeof addr === 'object' && addr ? addr.port : o.port });
    await m.openSystemPmcs(o.events, o.log);
    m.register(registry);
    return m;
  }

  private async openSystemPmcs(events: readonly string[], log: (line: string) => void): Promise<void> {
    const { ncpu } = this.module.getCpuInfo();
    for (const event of events) {
      for (let cpu = 0; cpu < ncpu; cpu++) {
        try {
          const r = this.module.resolveEvent(this.caller, event);
          const id = this.module.pmcAllocate(this.caller, { classId: r.classId, event: r.event, md: r.md, mode: PmcMode.SC, cpu, caps: 0, flags: 0 });
          this.module.pmcStart(this.caller, id);
          this.pmcs.push({ id, event, cpu });
        } catch (e) {
          // An offline CPU (ENXIO) has nothing to count; anything else is worth saying.
          if (!(e instanceof PmcError && e.code === 'ENXIO')) log(`metrics: cannot count ${event} on CPU ${cpu}: ${(e as Error).message}`);
        }
      }
    }
  }

  private register(registry: Registry): void {
    const module = this.module;
    const caller = this.caller;
    const pmcs = this.pmcs;
    const stats = () => module.call(caller, PmcOp.GETDRIVERSTATS, {}) as ReturnType<PmcModule['getDriverStats']>;
    const counter = (name: string, help: string, value: () => number) =>
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(value());
        },
      });
    new Gauge({
      name: 'tspmc_owners',
      help: 'Owners of PMCs (pmcd connections with PMCs or a log, and pmcd itself)',
      registers: [registry],
      collect() {
        this.set(module.getOwnerStats().length);
      },
    });
    new Gauge({
      name: 'tspmc_pmcs',
      help: 'Allocated PMCs by mode',
      labelNames: ['mode'],
      registers: [registry],
      collect() {
        const by = { SS: 0, SC: 0, TS: 0, TC: 0 };
        for (const o of module.getOwnerStats()) for (const k of Object.keys(by) as (keyof typeof by)[]) by[k] += o.pmcs[k];
        for (const [mode, n] of Object.entries(by)) this.set({ mode }, n);
      },
    });
    new Gauge({
      name: 'tspmc_rows_in_use',
      help: 'PMC rows holding at least one PMC, per CPU',
      labelNames: ['cpu'],
      registers: [registry],
      collect() {
        this.reset();
        const { ncpu } = module.getCpuInfo();
        for (let cpu = 0; cpu < ncpu; cpu++) {
          try {
            this.set({ cpu: String(cpu) }, module.getPmcInfo(cpu).filter((r) => r.holders.length > 0).length);
          } catch {
            // offline CPU
          }
        }
      },
    });
    counter('tspmc_samples_total', 'Samples taken from the kernel into sample buffers (intr_processed)', () => stats().intr_processed);
    counter('tspmc_samples_dropped_total', 'Samples dropped because a sample buffer was full (intr_bufferfull)', () => stats().intr_bufferfull);
    counter('tspmc_log_buffer_requests_failed_total', 'Log records dropped because no log buffer was free', () => stats().buffer_requests_failed);
    counter('tspmc_log_records_lost_total', 'Log records never written: a write error, or a log given up because its reader stopped reading', () => stats().log_records_lost);
    counter('tspmc_samples_lost_total', 'Samples the kernel dropped because a ring buffer was full (PERF_RECORD_LOST)', () => stats().samples_lost);
    counter('tspmc_ops_total', 'Module ops (syscalls)', () => stats().syscalls);
    counter('tspmc_op_errors_total', 'Module ops that failed', () => stats().syscall_errors);
    new Counter({
      name: 'tspmc_system_events_total',
      help: 'Events counted system-wide by pmcd, per CPU (pmcd.metrics_events)',
      labelNames: ['event', 'cpu'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of pmcs) {
          const v = module.call(caller, PmcOp.PMCRW, { id: p.id, flags: PmcFlags.OLDVALUE }) as bigint;
          this.inc({ event: p.event, cpu: String(p.cpu) }, Number(v));
        }
      },
    });
  }

  /** Stops serving; pmcd's PMCs go with the module's shutdown. */
  stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    return closed;
  }
}
