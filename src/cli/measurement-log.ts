// Where a measurement's log goes: -O FILE, -O host:port (a TCP peer, as
// FreeBSD's pmcstat sends it: nc -l port > log), or, for sampling without
// -O, a temporary file analyzed at the end. The log is configured before
// anything is allocated, so that it records every allocation, and its start
// is written at once: a log that cannot be written (a full disk) stops the
// run before anything runs. A log that fails later is said once.
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Libpmc, PmcError } from '../lib/index.js';
import { fileError } from './cli-error.js';

type DriverStats = Awaited<ReturnType<Libpmc['driverStats']>>;

export class MeasurementLog {
  /** The log file (the analysis reads it); undefined for a TCP peer or no log. */
  path: string | undefined;
  /** The first write error, said when it happened. */
  error: PmcError | undefined;
  private fd: number | undefined;
  private peer: Socket | undefined;
  private tmpDir: string | undefined;
  private statsBefore: DriverStats | undefined;

  /** `file`: -O's argument. */
  constructor(private readonly file: string | undefined) {}

  /** A log was configured. */
  get isOpen(): boolean {
    return this.fd !== undefined || this.peer !== undefined;
  }

  /** Configures the log: to -O, or, when `sampling` without -O, to a temporary file. */
  async open(lib: Libpmc, sampling: boolean): Promise<void> {
    const remote = this.file === undefined ? undefined : logHost(this.file);
    if (remote) {
      this.peer = await connectTcp(remote.host, remote.port);
      await lib.configureLogfile(this.peer);
    } else if (sampling || this.file !== undefined) {
      if (this.file === undefined) this.tmpDir = mkdtempSync(join(tmpdir(), 'pmcstat-'));
      const path = this.file ?? join(this.tmpDir!, 'pmcstat.log');
      this.path = path;
      try {
        this.fd = openSync(path, 'w', 0o644);
      } catch (e) {
        throw fileError('-O', path, 'cannot open for writing', e);
      }
      await lib
        .configureLogfile(this.fd)
        .then(() => lib.flushLogfile())
        .catch((e: unknown) => {
          throw this.writeError(e);
        });
    }
  }

  /** The driver statistics at the start, for the warnings at the end. */
  async started(lib: Libpmc): Promise<void> {
    this.statsBefore = await lib.driverStats();
  }

  /** The module could not write the log (its SIGIO): said once, now; closing it will not say it again. */
  failed(reason: string): void {
    if (this.error !== undefined) return;
    // The reason ends in its errno name, "(EPIPE)": that is the error's code.
    const m = /^(.*) \((E[A-Z0-9]+)\)$/s.exec(reason);
    this.error = this.writeError(m ? new PmcError(m[2], m[1]) : new PmcError('EIO', reason));
    process.stderr.write(`pmcstat: ERROR: ${this.error.message}\n`);
  }

  /** While recording to a terminal: samples, drops and log size on one line. */
  async statusLine(lib: Libpmc): Promise<void> {
    if (this.fd === undefined) return;
    const s = await lib.driverStats();
    const size = fstatSync(this.fd).size;
    process.stderr.write(`\rpmcstat: ${s.intr_processed} samples, ${s.intr_bufferfull} dropped, log ${(size / 1048576).toFixed(1)} MiB `);
  }

  /** CLOSELOG, then pmcstat's warnings about samples it could not keep. */
  async close(lib: Libpmc): Promise<void> {
    if (!this.isOpen) return;
    await lib.closeLogfile().catch((e: unknown) => {
      // An error already said (the module's SIGIO) is not said again.
      if (this.error !== undefined) return;
      this.error = this.writeError(e);
      process.stderr.write(`pmcstat: ERROR: ${this.error.message}\n`);
    });
    // Once the log failed, the samples that found no room are its consequence, said with the error: no advice to tune nsamples.
    if (this.statsBefore && this.error === undefined) warnAboutLosses(this.statsBefore, await lib.driverStats());
  }

  /** The temporary log, gone (pmcstat exits at once). */
  removeTemp(): void {
    if (this.tmpDir) rmSync(this.tmpDir, { recursive: true, force: true });
  }

  /** The descriptor or connection closed and the temporary log removed (once the module is done with them). */
  async release(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    if (this.peer) await new Promise<void>((r) => this.peer!.end(() => r()));
    this.removeTemp();
  }

  /** A log that could not be written, as one line naming it. */
  private writeError(e: unknown): PmcError {
    const code = (e as PmcError).code ?? 'EIO';
    const text = e instanceof PmcError ? e.detail : (e as Error).message;
    // The writer's text ends in Node's "<CODE>: <description>, write".
    const why = /\b[A-Z][A-Z0-9]+: ([^,(]+)/.exec(text)?.[1]?.trim() ?? text;
    return new PmcError(code, `${this.file === undefined ? 'the sampling log' : `-O ${this.file}`}: cannot write the log: ${why}`);
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

/** pmcstat's end-of-run warnings, from the change in driver statistics. */
function warnAboutLosses(before: DriverStats, after: DriverStats): void {
  const stalls = after.intr_bufferfull - before.intr_bufferfull;
  const discarded = after.buffer_requests_failed - before.buffer_requests_failed;
  const s = (n: number): string => (n === 1 ? '' : 's');
  if (stalls > 0) {
    process.stderr.write(`WARNING: sampling was paused at least ${stalls} time${s(stalls)}.\nPlease consider tuning the "kern.hwpmc.nsamples" tunable.\n`);
  }
  if (discarded > 0) {
    process.stderr.write(`WARNING: at least ${discarded} event${s(discarded)} were discarded while running.\nPlease consider tuning the "kern.hwpmc.nbuffers" tunable.\n`);
  }
  // Linux's own loss, which hwpmc cannot have: the kernel found a ring full (the collector fell behind).
  const lost = after.samples_lost - before.samples_lost;
  if (lost > 0) {
    process.stderr.write(`WARNING: the kernel lost at least ${lost} sample${s(lost)}: its ring buffers were full.\nPlease consider a longer sampling interval (-n, --freq) or fewer sampled processes.\n`);
  }
}
