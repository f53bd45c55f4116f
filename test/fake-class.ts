// A PMC class with in-memory counters, for unit tests of the module's state
// machine and row bookkeeping without the kernel. Its counters count only
// what the test tells them to (advance()), and every opened set holds one
// pretend file descriptor until it is closed, so leaks show in openFds.
// Given `counters`, it is a PMU that can run out of them, as a hardware
// PMU does: a set started when every counter is taken is what a pinned perf
// event becomes then, an event in error state that reads as EBUSY.
// Core unit tests only: anything that touches perf is tested on real events.
import type { ClassDep, ClassEvent, HwCounterSet, HwRequest, Inheritance } from '../src/md/class-dep.js';
import type { SampleSource } from '../src/md/sample-sink.js';
import { PmcModule } from '../src/module/pmc-module.js';
import { PmcCaps, PmcClass } from '../src/module/pmc-types.js';
import { DEFAULT_TUNABLES, type Tunables } from '../src/module/tunables.js';
import { PmcError } from '../src/pmc-error.js';

export type FakeTarget = { kind: 'process'; pid: number; inheritance: Inheritance } | { kind: 'cpu'; cpu: number };

export class FakeCounterSet implements HwCounterSet {
  readonly sampleSources: readonly SampleSource[] = [];
  /** The raw count; advance() adds to it only while the set is started. */
  value = 0n;
  running = false;
  closed = false;
  /** When set, read() fails with it (a counter the hardware lost). */
  readError?: PmcError;

  /** Holds one of its class's hardware counters (while started). */
  holdsCounter = false;
  /** Started when no counter was free: stopped counting for good (a pinned event in error state). */
  pushedOff = false;

  constructor(
    readonly target: FakeTarget,
    readonly request: HwRequest,
    private readonly pmu?: FakeClass,
  ) {}

  read(): bigint {
    if (this.closed) throw new PmcError('EBADF', 'read of a closed fake counter');
    if (this.readError) throw this.readError;
    if (this.pushedOff) throw new PmcError('EBUSY', 'fake counter was pushed off the PMU and stopped counting');
    return this.value;
  }

  start(): void {
    if (this.closed) throw new PmcError('EBADF', 'start of a closed fake counter');
    if (this.pmu?.counters !== undefined && !this.holdsCounter && !this.pushedOff) {
      if (this.pmu.countersInUse < this.pmu.counters) this.holdsCounter = true;
      else this.pushedOff = true;
    }
    this.running = true;
  }

  stop(): void {
    if (this.closed) throw new PmcError('EBADF', 'stop of a closed fake counter');
    this.running = false;
    this.holdsCounter = false;
  }

  close(): void {
    this.closed = true;
    this.running = false;
    this.holdsCounter = false;
  }

  get fdCount(): number {
    return this.closed ? 0 : 1;
  }
}

export interface FakeClassOptions {
  rows: number;
  classId?: number;
  name?: string;
  /** Defaults to every capability a perf class has: READ, WRITE, USER, SYSTEM, INTERRUPT. */
  caps?: number;
  available?: boolean;
  unavailableReason?: string;
  events?: ClassEvent[];
  /** Hardware counters the PMU has (default: as many as asked for). */
  counters?: number;
}

export const FAKE_EVENTS: readonly ClassEvent[] = [
  { name: 'fake-ticks', code: 1 },
  { name: 'fake-misses', code: 2 },
];

export class FakeClass implements ClassDep {
  readonly classId: number;
  readonly name: string;
  readonly caps: number;
  readonly width = 64;
  readonly rows: number;
  readonly available: boolean;
  readonly unavailableReason?: string;
  /** Every counter set ever opened, in order. */
  readonly sets: FakeCounterSet[] = [];
  /** Hardware counters, when the PMU has a limit. */
  readonly counters?: number;
  /** Opening a set for one of these pids fails with the error given. */
  readonly failOpen = new Map<number, PmcError>();
  private readonly eventList: ClassEvent[];

  constructor(options: FakeClassOptions) {
    this.rows = options.rows;
    this.classId = options.classId ?? PmcClass.FAKE;
    this.name = options.name ?? 'FAKE';
    this.caps = options.caps ?? PmcCaps.READ | PmcCaps.WRITE | PmcCaps.USER | PmcCaps.SYSTEM | PmcCaps.INTERRUPT;
    this.available = options.available ?? true;
    this.unavailableReason = options.unavailableReason;
    this.eventList = [...(options.events ?? FAKE_EVENTS)];
    this.counters = options.counters;
  }

  /** Counters held by started sets. */
  get countersInUse(): number {
    return this.sets.filter((s) => s.holdsCounter).length;
  }

  events(): ClassEvent[] {
    return [...this.eventList];
  }

  eventName(code: number): string {
    return this.eventList.find((e) => e.code === code)?.name ?? `${this.name}-0x${code.toString(16)}`;
  }

  validate(request: HwRequest): void {
    if (!this.eventList.some((e) => e.code === request.event)) {
      throw new PmcError('EINVAL', `class ${this.name} has no event with code 0x${request.event.toString(16)}`);
    }
    if (request.sampling && request.reloadCount <= 0n) throw new PmcError('EINVAL', 'a sampling PMC needs a rate above 0');
  }

  openProcess(request: HwRequest, pid: number, inheritance: Inheritance): HwCounterSet {
    const failure = this.failOpen.get(pid);
    if (failure) throw failure;
    return this.add(new FakeCounterSet({ kind: 'process', pid, inheritance }, request, this));
  }

  openCpu(request: HwRequest, cpu: number): HwCounterSet {
    return this.add(new FakeCounterSet({ kind: 'cpu', cpu }, request, this));
  }

  private add(set: FakeCounterSet): FakeCounterSet {
    this.sets.push(set);
    return set;
  }

  /** Every started, open counter counts `n` more events. */
  advance(n: bigint): void {
    for (const s of this.sets) if (s.running && !s.closed && !s.pushedOff) s.value += n;
  }

  /** Pretend file descriptors still open. */
  get openFds(): number {
    return this.sets.reduce((n, s) => n + s.fdCount, 0);
  }

  /** The open sets counting process `pid`. */
  setsOf(pid: number): FakeCounterSet[] {
    return this.sets.filter((s) => !s.closed && s.target.kind === 'process' && s.target.pid === pid);
  }
}

export interface FakeModuleOptions {
  classes: FakeClass[];
  ncpu?: number;
  /** Defaults to every CPU. */
  activeCpus?: number[];
  tunables?: Partial<Tunables>;
}

/** A module over fake classes, with default tunables unless overridden. */
export function fakeModule(options: FakeModuleOptions): PmcModule {
  const ncpu = options.ncpu ?? 2;
  return new PmcModule({
    classes: options.classes,
    tunables: { ...DEFAULT_TUNABLES, ...options.tunables },
    ncpu,
    activeCpus: options.activeCpus ?? Array.from({ length: ncpu }, (_, i) => i),
  });
}
