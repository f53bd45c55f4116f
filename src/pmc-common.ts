// What every layer shares, as sys/pmc.h serves the kernel and userland
// alike: PMC capability bits, class numbers, CPU lists, and the clock of
// every timestamp.
// It sits at the bottom (beside pmc-error.ts): md, log, module, report, lib
// and cli may all import it, and it imports nothing of theirs.
import { PmcError } from './pmc-error.js';

/** enum pmc_caps: what a class (and a PMC allocated on it) can do. */
export const PmcCaps = {
  INTERRUPT: 1 << 0,
  USER: 1 << 1,
  SYSTEM: 1 << 2,
  EDGE: 1 << 3,
  THRESHOLD: 1 << 4,
  READ: 1 << 5,
  WRITE: 1 << 6,
  INVERT: 1 << 7,
  QUALIFIER: 1 << 8,
  PRECISE: 1 << 9,
  TAGGING: 1 << 10,
  CASCADE: 1 << 11,
  SYSWIDE: 1 << 12,
  DOMWIDE: 1 << 13,
} as const;

/** Class numbers (enum pmc_class): FreeBSD's SOFT keeps its value; the Linux families get their own. */
export enum PmcClass {
  SOFT = 0x0f,
  HW = 0x30,
  CACHE = 0x31,
  TRACEPOINT = 0x32,
  /** Dynamic PMUs from /sys/bus/event_source/devices: PMU n is PMU_BASE + n. */
  PMU_BASE = 0x40,
  /** Classes made for tests. */
  FAKE = 0xf0,
}

/** The deepest call chain a sample keeps (the callchaindepth tunable's maximum) and a CALLCHAIN record holds. */
export const PMC_CALLCHAIN_DEPTH_MAX = 512;

/**
 * tspmc's flag beside FreeBSD's PMC_F_* (whose 0x400 is free): the rate of a
 * sampling PMC is a frequency in samples per second, not a reload count. Set
 * in the PMCALLOCATE records of the log, whose readers need it to weigh samples.
 */
export const PMC_F_FREQUENCY = 0x00000400;

/** A PMC id holds the CPU in 12 bits, so no CPU number reaches this. */
export const PMC_CPU_LIMIT = 4096;

/**
 * A CPU list as the kernel writes it in sysfs and as users type it after
 * pmcstat -c: numbers and ranges separated by commas ("0-3,5,8-11").
 * Returns the CPUs sorted, each once; an empty (or blank) list is empty.
 * `where` names the source in errors (an option, a sysfs path).
 */
export function parseCpuList(text: string, where: string): number[] {
  const body = text.trim();
  if (body === '') return [];
  const cpus = new Set<number>();
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new PmcError('EINVAL', `${where}: "${part}" is not a CPU number or range (expected numbers and ranges like 0,2-3)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new PmcError('EINVAL', `${where}: range "${part}" ends before it starts`);
    if (hi >= PMC_CPU_LIMIT) throw new PmcError('EINVAL', `${where}: CPU ${hi} in "${part}" is beyond the highest CPU a PMC id can name (${PMC_CPU_LIMIT - 1})`);
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

/**
 * The clock of every timestamp tspmc writes: CLOCK_MONOTONIC. perf stamps
 * samples and side-band records with perf_clock() (the scheduler clock,
 * which drifts from CLOCK_MONOTONIC) unless the event sets use_clockid; md
 * opens every event that produces records with use_clockid and this
 * clockid, so the kernel's times and now() read one clock and can be merged.
 */
export const PMC_CLOCKID = 1; // CLOCK_MONOTONIC (include/uapi/linux/time.h)

/** Now on PMC_CLOCKID, in nanoseconds (Node's hrtime is clock_gettime(CLOCK_MONOTONIC)). */
export function now(): number {
  return Number(process.hrtime.bigint());
}
