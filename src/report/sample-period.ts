// What one sample of a PMC stands for. The log gives each sampling PMC's
// rate and, in its flags, whether that rate is a frequency (PMC_F_FREQUENCY);
// it records no period per sample. So:
// - a reload count of N: each sample stands for N events. cpu-clock and
//   task-clock count nanoseconds, and the kernel never arms their timer for
//   less than 10 µs (perf_swevent_start_hrtimer), so a sample stands for at
//   least 10,000 ns;
// - a frequency F of cpu-clock or task-clock: the kernel turns it into the
//   fixed period 1e9 / F ns (perf_swevent_init_hrtimer);
// - a frequency of any other event: the kernel changes the period from
//   sample to sample to keep that frequency, and the log does not have it.
//   The weight is unknown and outputs count samples only (saying why).
import { PMC_F_FREQUENCY } from '../pmc-common.js';

/** The events counted in nanoseconds, by a timer. */
const CLOCK_EVENTS = new Set(['cpu-clock', 'task-clock']);
/** The shortest period the kernel times cpu-clock and task-clock with. */
const MIN_CLOCK_PERIOD = 10_000n;

export interface SampledPmc {
  readonly name: string;
  /** The logged rate: events per sample, or samples per second when `frequency`; 0 when unknown. */
  readonly rate: bigint;
  readonly frequency: boolean;
}

export interface SamplePeriod {
  /** Events (nanoseconds for clock events) one sample stands for. */
  value: bigint;
  unit: 'nanoseconds' | 'events';
}

/** Whether a PMCALLOCATE record's flags say its rate is a frequency. */
export const isFrequency = (flags: number): boolean => (flags & PMC_F_FREQUENCY) !== 0;

/** The period of each sample of `pmc`, or undefined when the log cannot tell it. */
export function samplePeriod(pmc: SampledPmc): SamplePeriod | undefined {
  if (pmc.rate <= 0n) return undefined;
  if (!CLOCK_EVENTS.has(pmc.name)) return pmc.frequency ? undefined : { value: pmc.rate, unit: 'events' };
  const period = pmc.frequency ? 1_000_000_000n / pmc.rate : pmc.rate;
  return { value: period > MIN_CLOCK_PERIOD ? period : MIN_CLOCK_PERIOD, unit: 'nanoseconds' };
}

/** The rate as people read it: "100,000 events per sample", "1,000 Hz: 1,000,000 ns per sample", "1,000 Hz, period not logged". */
export function describeRate(pmc: SampledPmc): string {
  const period = samplePeriod(pmc);
  const each = period && `${period.value.toLocaleString('en-US')} ${period.unit === 'nanoseconds' ? 'ns' : 'events'} per sample`;
  if (!pmc.frequency) return each ?? 'rate unknown';
  const hz = `${pmc.rate.toLocaleString('en-US')} Hz`;
  return each ? `${hz}: ${each}` : `${hz}, period not logged`;
}
