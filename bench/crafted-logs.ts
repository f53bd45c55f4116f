// Valid logs crafted to stress the analysis' memory (issue 6, defect 6):
//   deep-chains  SAMPLES call chains of DEPTH distinct user addresses each (no image maps them)
//   many-pids    one one-frame sample from each of PIDS processes
//   long-paths   MAPS MAP_IN records of distinct unreadable paths of BYTES bytes, and a sample
//   many-mappings  MAPS MAP_IN records in one process, then samples in them
//   many-pmcs    PMCS PMCs of distinct names, a sample each
// Each is written as it is generated (a few hundred MB take no memory), with an
// INITIALIZE first and a CLOSELOG last. Used by test/report-memory.test.ts and
// by hand:
//   node dist/bench/crafted-logs.js deep-chains OUT [SAMPLES=50000 [DEPTH=512]]
//   node dist/bench/crafted-logs.js many-pids OUT [PIDS=32000]
//   node dist/bench/crafted-logs.js long-paths OUT [MAPS=2000 [BYTES=65000]]
import { fileURLToPath } from 'node:url';
import { LogType, type LogRecord } from '../src/log/records.js';
import { LogFileWriter } from './log-file-writer.js';

const PMCID = 0x100;
/**
 * The pid of crafted processes (and the first of many): above the kernel's
 * PID_MAX_LIMIT (2^22), so that no process of this machine has it and no
 * /tmp/perf-PID.map a JIT left behind is taken for one of theirs.
 */
const FIRST_PID = 5_000_000;

/** A log whose records are stamped with successive ticks, INITIALIZE and a cpu-clock PMC first. */
export class CraftedLog {
  private readonly file: LogFileWriter;
  private ts = 1;

  constructor(path: string) {
    this.file = new LogFileWriter(path);
    this.add({ type: LogType.INITIALIZE, ts: 0, version: 0x0a000000, cpuType: 0, tscFreq: 1e9, wallSec: 0, wallNsec: 0, cpuid: 'crafted' });
    this.add({ type: LogType.PMCALLOCATEDYN, ts: 0, pmcid: PMCID, event: 0, flags: 0, rate: 1000n, eventName: 'cpu-clock' });
  }

  /** Adds a record; its `ts` is replaced by the next tick. */
  add(r: LogRecord): void {
    r.ts = this.ts++;
    this.file.add(r);
  }

  sample(pid: number, pcs: BigUint64Array): void {
    this.add({ type: LogType.CALLCHAIN, ts: 0, pid, tid: pid, pmcid: PMCID, cpu: 0, flags: 1, pcs });
  }

  /** Ends the log with a CLOSELOG, or (`cut`) without one, as a killed collector leaves it. */
  close(cut = false): void {
    if (!cut) this.add({ type: LogType.CLOSELOG, ts: 0 });
    this.file.close();
  }
}

/** `samples` chains of `depth` distinct 16-byte-aligned user addresses, none mapped: every frame is new. */
export function writeDeepChains(path: string, samples = 50_000, depth = 512): void {
  const log = new CraftedLog(path);
  const pcs = new BigUint64Array(depth);
  let next = 0x1000_0000n;
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < depth; i++) pcs[i] = next += 16n;
    log.sample(FIRST_PID, pcs);
  }
  log.close();
}

/** One sample from each of `pids` processes (pids FIRST_PID, FIRST_PID + 1, ...), all at one address. */
export function writeManyPids(path: string, pids = 32_000): void {
  const log = new CraftedLog(path);
  const pcs = BigUint64Array.of(0x40_1000n);
  for (let p = 0; p < pids; p++) log.sample(FIRST_PID + p, pcs);
  log.close();
}

/** `maps` MAP_IN records of one process, each a different missing file with a `bytes`-long path, then one sample. */
export function writeLongPaths(path: string, maps = 2000, bytes = 65_000): void {
  const log = new CraftedLog(path);
  const filler = 'x'.repeat(bytes - 16);
  for (let m = 0; m < maps; m++) {
    log.add({ type: LogType.MAP_IN, ts: 0, pid: FIRST_PID, start: BigInt(0x40_0000 + m * 0x10_0000), pathname: `/${String(m).padStart(8, '0')}/${filler}`.slice(0, bytes) });
  }
  log.sample(FIRST_PID, BigUint64Array.of(0x40_1000n));
  log.close();
}

/** `maps` MAP_IN records of one process at ascending addresses (one missing file), then a sample in each of the last 1000. */
export function writeManyMappings(path: string, maps = 100_000): void {
  const log = new CraftedLog(path);
  for (let m = 0; m < maps; m++) log.add({ type: LogType.MAP_IN, ts: 0, pid: FIRST_PID, start: BigInt(0x10_0000 + m * 0x1000), pathname: '/nonexistent/lib.so' });
  for (let m = Math.max(0, maps - 1000); m < maps; m++) log.sample(FIRST_PID, BigUint64Array.of(BigInt(0x10_0000 + m * 0x1000 + 0x10)));
  log.close();
}

/** `pmcs` PMCs of distinct names, one sample each. */
export function writeManyPmcs(path: string, pmcs = 100_000): void {
  const log = new CraftedLog(path);
  for (let p = 0; p < pmcs; p++) {
    log.add({ type: LogType.PMCALLOCATEDYN, ts: 0, pmcid: 0x1000 + p, event: 0, flags: 0, rate: 1000n, eventName: `event-${p}` });
    log.add({ type: LogType.CALLCHAIN, ts: 0, pid: FIRST_PID, tid: FIRST_PID, pmcid: 0x1000 + p, cpu: 0, flags: 1, pcs: BigUint64Array.of(0x40_1000n) });
  }
  log.close();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [kind, out, ...rest] = process.argv.slice(2);
  const n = rest.map(Number);
  if (kind === 'deep-chains' && out) writeDeepChains(out, n[0], n[1]);
  else if (kind === 'many-pids' && out) writeManyPids(out, n[0]);
  else if (kind === 'long-paths' && out) writeLongPaths(out, n[0], n[1]);
  else if (kind === 'many-mappings' && out) writeManyMappings(out, n[0]);
  else if (kind === 'many-pmcs' && out) writeManyPmcs(out, n[0]);
  else {
    process.stderr.write('usage: crafted-logs.js deep-chains|many-pids|long-paths|many-mappings|many-pmcs OUT [N [M]]\n');
    process.exit(2);
  }
}
