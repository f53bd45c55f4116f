// The machine's event classes and their events, found by asking the kernel
// (opening each candidate once) and reading sysfs/tracefs, and the mapping
// from an event name as a user writes it to a perf_event_attr type/config.
//
// Classes, in lookup order: SOFT (PERF_TYPE_SOFTWARE), HW (generic hardware
// events), CACHE (generic cache events), TRACEPOINT, then one class per
// dynamic PMU under /sys/bus/event_source/devices.
import { readdirSync, readFileSync } from 'node:fs';
import { parseCpuList } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import { errnoName } from './errno.js';
import { closeFd, perfEventOpen } from './native.js';
import { encodeAttr, PerfType } from './perf-attr.js';
import {
  CONFIG_WORDS,
  emptyConfig,
  encodeTerms,
  parseFormat,
  parseTerms,
  unpackField,
  type ConfigWords,
  type FormatField,
  type Term,
} from './pmu-format.js';
import { locateTracefs, tracepointEvents, tracepointId, tracepointSubsystems } from './tracefs.js';

export { onlineCpus, possibleCpuCount } from './cpus.js';
export type { FormatField } from './pmu-format.js';

export type EventFamily = 'SOFT' | 'HW' | 'CACHE' | 'TRACEPOINT' | 'PMU';

export interface PerfConfig {
  type: number;
  config: bigint;
  config1?: bigint;
  config2?: bigint;
}

export interface EventDef {
  name: string;
  /** Class-local and stable within a run: the perf config (SOFT, HW, CACHE), the tracepoint id, a PMU alias index. */
  code: number;
  perf: PerfConfig;
  description?: string;
  /** Other names perf accepts for the same event (faults for page-faults). */
  aliases?: readonly string[];
}

export interface EventClassInfo {
  family: EventFamily;
  /** 'SOFT', 'HW', 'CACHE', 'TRACEPOINT', or the PMU's sysfs name, e.g. 'msr'. */
  name: string;
  perfType: number;
  available: boolean;
  unavailableReason?: string;
  /** Probed: the kernel accepted a sampling event (sample_period set) of this class. */
  canSample: boolean;
  /** Hardware counters, when the kernel tells (it does not for x86 core PMUs); else undefined. */
  counters?: number;
  /**
   * False when the class refuses exclude_user/exclude_kernel (PMUs like msr count
   * every mode at once): open its events with no exclude_* bits. Undefined = true.
   */
  modeFilter?: boolean;
  /** False for PMUs that only count per CPU (uncore): system mode on `cpumask` CPUs. Undefined = true. */
  perProcess?: boolean;
  /** The CPUs a per-CPU PMU counts on (its sysfs cpumask), when it has one. */
  cpumask?: readonly number[];
  /** Events this class knows that the kernel refused here, with the errno (class available, event not). */
  rejected?: ReadonlyMap<string, string>;
  /** PMU classes: the term vocabulary from format/*. */
  formats?(): FormatField[];
  /** PMU classes: the term list of an events/* alias, undefined if there is no such alias. */
  aliasTerms?(alias: string): Term[] | undefined;
  /** One event by exact name, or with `loose` by pmc_match_event_name rules; lets big classes skip events(). */
  findEvent?(name: string, loose: boolean): EventDef | undefined;
  /** May be lazy and slow for big classes; cached. */
  events(): EventDef[];
}

const PMU_DIR = '/sys/bus/event_source/devices';
const PERF_FLAG_FD_CLOEXEC = 1 << 3;
/** A sampling probe's period: big enough that the probe never takes a sample. */
const PROBE_PERIOD = 1_000_000_000n;

// ---------------------------------------------------------------------------
// Generic event tables (include/uapi/linux/perf_event.h ids, perf's names)

interface GenericEvent {
  name: string;
  config: number;
  description: string;
  aliases?: string[];
}

const SOFTWARE_EVENTS: readonly GenericEvent[] = [
  { name: 'cpu-clock', config: 0, description: 'per-CPU high-resolution timer, nanoseconds' },
  { name: 'task-clock', config: 1, description: 'time the task ran, nanoseconds' },
  { name: 'page-faults', aliases: ['faults'], config: 2, description: 'page faults' },
  { name: 'context-switches', aliases: ['cs'], config: 3, description: 'context switches' },
  { name: 'cpu-migrations', aliases: ['migrations'], config: 4, description: 'migrations to another CPU' },
  { name: 'minor-faults', config: 5, description: 'page faults served without I/O' },
  { name: 'major-faults', config: 6, description: 'page faults that needed I/O' },
  { name: 'alignment-faults', config: 7, description: 'unaligned accesses fixed up by the kernel' },
  { name: 'emulation-faults', config: 8, description: 'instructions emulated by the kernel' },
  { name: 'dummy', config: 9, description: 'counts nothing; carries side-band records' },
  { name: 'bpf-output', config: 10, description: 'output from BPF programs' },
  { name: 'cgroup-switches', config: 11, description: 'context switches to a task in another cgroup' },
];

const HARDWARE_EVENTS: readonly GenericEvent[] = [
  { name: 'cpu-cycles', aliases: ['cycles'], config: 0, description: 'CPU cycles' },
  { name: 'instructions', config: 1, description: 'instructions retired' },
  { name: 'cache-references', config: 2, description: 'cache accesses (usually last level)' },
  { name: 'cache-misses', config: 3, description: 'cache misses (usually last level)' },
  { name: 'branch-instructions', aliases: ['branches'], config: 4, description: 'branch instructions retired' },
  { name: 'branch-misses', config: 5, description: 'mispredicted branches' },
  { name: 'bus-cycles', config: 6, description: 'bus cycles' },
  { name: 'stalled-cycles-frontend', aliases: ['idle-cycles-frontend'], config: 7, description: 'cycles stalled in the front end' },
  { name: 'stalled-cycles-backend', aliases: ['idle-cycles-backend'], config: 8, description: 'cycles stalled in the back end' },
  { name: 'ref-cycles', config: 9, description: 'reference cycles, unaffected by frequency scaling' },
];

/** perf's generic cache event names: config = cache | op << 8 | result << 16. */
function cacheEvents(): GenericEvent[] {
  const READ = 1, WRITE = 2, PREFETCH = 4;
  const caches: [string, number, number, string][] = [
    ['L1-dcache', 0, READ | WRITE | PREFETCH, 'level 1 data cache'],
    ['L1-icache', 1, READ | PREFETCH, 'level 1 instruction cache'],
    ['LLC', 2, READ | WRITE | PREFETCH, 'last level cache'],
    ['dTLB', 3, READ | WRITE | PREFETCH, 'data TLB'],
    ['iTLB', 4, READ, 'instruction TLB'],
    ['branch', 5, READ, 'branch prediction unit'],
    ['node', 6, READ | WRITE | PREFETCH, 'local memory (NUMA node)'],
  ];
  const ops: [string, string, number, number][] = [
    ['load', 'loads', 0, READ],
    ['store', 'stores', 1, WRITE],
    ['prefetch', 'prefetches', 2, PREFETCH],
  ];
  const out: GenericEvent[] = [];
  for (const [cache, id, opMask, what] of caches) {
    for (const [op, ops_, opId, bit] of ops) {
      if (!(opMask & bit)) continue;
      out.push({ name: `${cache}-${ops_}`, config: id | (opId << 8), description: `${what}: ${ops_}` });
      out.push({ name: `${cache}-${op}-misses`, config: id | (opId << 8) | (1 << 16), description: `${what}: ${op} misses` });
    }
  }
  return out;
}

function genericDef(type: number, g: GenericEvent): EventDef {
  const def: EventDef = { name: g.name, code: g.config, perf: { type, config: BigInt(g.config) }, description: g.description };
  if (g.aliases) def.aliases = g.aliases;
  return def;
}

// ---------------------------------------------------------------------------
// Probing: can the kernel open this event here, for this process?

interface Probe {
  perf: PerfConfig;
  /** Set exclude_kernel/exclude_hv, so that unprivileged users (paranoid 2) may open it. */
  userOnly: boolean;
  sample?: bigint;
  pid?: number;
  cpu?: number;
}

/** Opens and closes the event; undefined on success, else the errno name. */
function tryOpen(p: Probe): string | undefined {
  const attr = encodeAttr({
    type: p.perf.type,
    config: p.perf.config,
    config1: p.perf.config1,
    config2: p.perf.config2,
    samplePeriod: p.sample,
    flags: { disabled: true, excludeKernel: p.userOnly, excludeHv: p.userOnly },
  });
  const fd = perfEventOpen(attr, p.pid ?? 0, p.cpu ?? -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return errnoName(fd);
  closeFd(fd);
  return undefined;
}

function paranoidLevel(): string {
  try {
    return readFileSync('/proc/sys/kernel/perf_event_paranoid', 'latin1').trim();
  } catch {
    return 'unknown';
  }
}

/** Why an open failed, in words; `what` names the event, `noDevice` explains ENOENT. */
function openFailure(what: string, errno: string, noDevice?: string): string {
  const call = `perf_event_open(${what}) failed with ${errno}`;
  if (errno === 'ENOENT' && noDevice) return `${noDevice}: ${call}`;
  if (errno === 'EACCES' || errno === 'EPERM') {
    return `${call} (perf_event_paranoid=${paranoidLevel()}; needs root or CAP_PERFMON)`;
  }
  return call;
}

// ---------------------------------------------------------------------------
// Name matching

/** pmc_match_event_name's equivalence: case-insensitive, '-', '_', '.' and ' ' alike. */
export function normalizeEventName(name: string): string {
  return name.toLowerCase().replace(/[-_. ]/g, '-');
}

function namesOf(def: EventDef): readonly string[] {
  return def.aliases ? [def.name, ...def.aliases] : [def.name];
}

/** Exact and loose indexes over a fixed event list. */
class EventIndex {
  private readonly exact = new Map<string, EventDef>();
  private readonly loose = new Map<string, EventDef>();

  constructor(defs: readonly EventDef[]) {
    for (const def of defs) {
      for (const n of namesOf(def)) {
        if (!this.exact.has(n)) this.exact.set(n, def);
        const k = normalizeEventName(n);
        if (!this.loose.has(k)) this.loose.set(k, def);
      }
    }
  }

  find(name: string, loose: boolean): EventDef | undefined {
    return loose ? this.loose.get(normalizeEventName(name)) : this.exact.get(name);
  }
}

function findIn(cls: EventClassInfo, name: string, loose: boolean): EventDef | undefined {
  if (cls.findEvent) return cls.findEvent(name, loose);
  const key = loose ? normalizeEventName(name) : name;
  return cls.events().find((d) => namesOf(d).some((n) => (loose ? normalizeEventName(n) : n) === key));
}

// ---------------------------------------------------------------------------
// SOFT, HW, CACHE: fixed tables, each event probed

/** A class over a fixed list: events() is the list, lookups use an index. */
class ListedClass implements EventClassInfo {
  readonly unavailableReason?: string;
  readonly rejected?: ReadonlyMap<string, string>;
  private index?: EventIndex;

  constructor(
    readonly family: EventFamily,
    readonly name: string,
    readonly perfType: number,
    readonly available: boolean,
    readonly canSample: boolean,
    private readonly list: EventDef[],
    extra: { unavailableReason?: string; rejected?: ReadonlyMap<string, string> } = {},
  ) {
    if (extra.unavailableReason !== undefined) this.unavailableReason = extra.unavailableReason;
    if (extra.rejected && extra.rejected.size > 0) this.rejected = extra.rejected;
  }

  events(): EventDef[] {
    return this.list;
  }

  findEvent(name: string, loose: boolean): EventDef | undefined {
    this.index ??= new EventIndex(this.list);
    return this.index.find(name, loose);
  }
}

/**
 * Probes every event of a generic table. The class is available when the kernel
 * accepts at least one; an unavailable class still lists its events (so a lookup
 * can say why it cannot be used), an available one lists only the accepted ones.
 */
function probedClass(family: EventFamily, type: number, table: readonly GenericEvent[], noDevice?: string): ListedClass {
  const accepted: EventDef[] = [];
  const rejected = new Map<string, string>();
  let firstFailure: string | undefined;
  for (const g of table) {
    const def = genericDef(type, g);
    const errno = tryOpen({ perf: def.perf, userOnly: true });
    if (errno === undefined) accepted.push(def);
    else {
      rejected.set(g.name, errno);
      firstFailure ??= openFailure(g.name, errno, noDevice);
    }
  }
  if (accepted.length === 0) {
    return new ListedClass(family, family, type, false, false, table.map((g) => genericDef(type, g)), {
      unavailableReason: firstFailure ?? 'no events',
    });
  }
  // cpu-clock (or the first accepted event) stands for the class: sampling works
  // through the same interrupt or timer for all of a family's events.
  const canSample = tryOpen({ perf: accepted[0]!.perf, userOnly: true, sample: PROBE_PERIOD }) === undefined;
  return new ListedClass(family, family, type, true, canSample, accepted, { rejected });
}

// ---------------------------------------------------------------------------
// TRACEPOINT: lazily, from tracefs

class TracepointClass implements EventClassInfo {
  readonly family = 'TRACEPOINT';
  readonly name = 'TRACEPOINT';
  readonly perfType = PerfType.TRACEPOINT;
  readonly available: boolean;
  readonly unavailableReason?: string;
  readonly canSample: boolean;
  private readonly root?: string;
  /** Every def handed out, by name, so a tracepoint is one object (and one code) per run. */
  private readonly known = new Map<string, EventDef>();
  private readonly ids = new Map<string, number>();
  private listed?: EventDef[];

  constructor() {
    const where = locateTracefs();
    if ('reason' in where) {
      this.available = false;
      this.unavailableReason = where.reason;
      this.canSample = false;
      return;
    }
    this.root = where.root;
    // Opening a tracepoint event registers a kernel probe, and closing it waits
    // for RCU: 10-30 ms each, too slow for every start. What a tracepoint needs
    // beyond a readable tracefs is permission for kernel-mode events (tracepoints
    // fire in the kernel, so exclude_kernel would hide them all); a software
    // event without exclude_kernel asks the kernel exactly that.
    const errno = tryOpen({ perf: { type: PerfType.SOFTWARE, config: 0n }, userOnly: false });
    this.available = errno === undefined;
    if (errno !== undefined) {
      this.unavailableReason = `tracepoints count in kernel mode, which is not permitted here: ${openFailure('cpu-clock without exclude_kernel', errno)}`;
    }
    // The tracepoint PMU samples any event with any period (period 1 = every hit).
    this.canSample = this.available;
  }

  /** The tracepoint's id, read once per run. */
  private idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      const colon = name.indexOf(':');
      id = tracepointId(this.root!, name.slice(0, colon), name.slice(colon + 1));
      if (id === undefined) throw new PmcError('ENOENT', `tracepoint ${name} has no id under ${this.root}/events`);
      this.ids.set(name, id);
    }
    return id;
  }

  /**
   * A def whose code and perf read the id when first asked for: listing
   * thousands of tracepoints must not read thousands of files. They are own
   * enumerable getters, so spreading or serializing a def still carries them.
   */
  private def(name: string): EventDef {
    let d = this.known.get(name);
    if (!d) {
      const code = (): number => this.idOf(name);
      d = Object.defineProperties({ name } as EventDef, {
        code: { enumerable: true, get: code },
        perf: { enumerable: true, get: (): PerfConfig => ({ type: PerfType.TRACEPOINT, config: BigInt(code()) }) },
      });
      this.known.set(name, d);
    }
    return d;
  }

  events(): EventDef[] {
    if (!this.root) return [];
    if (!this.listed) {
      // available_events is the kernel's own list: one read instead of thousands of readdirs.
      let text = '';
      try {
        text = readFileSync(`${this.root}/available_events`, 'latin1');
      } catch {
        for (const s of tracepointSubsystems(this.root)) for (const e of tracepointEvents(this.root, s)) text += `${s}:${e}\n`;
      }
      const names = text.split('\n').filter((l) => l.includes(':')).sort();
      this.listed = names.map((n) => this.def(n));
    }
    return this.listed;
  }

  findEvent(name: string, loose: boolean): EventDef | undefined {
    if (!this.root) return undefined;
    const colon = name.indexOf(':');
    if (colon <= 0) return undefined;
    let subsystem = name.slice(0, colon);
    let event = name.slice(colon + 1);
    if (loose) {
      const s = tracepointSubsystems(this.root).find((x) => normalizeEventName(x) === normalizeEventName(subsystem));
      if (s === undefined) return undefined;
      const e = tracepointEvents(this.root, s).find((x) => normalizeEventName(x) === normalizeEventName(event));
      if (e === undefined) return undefined;
      subsystem = s;
      event = e;
    }
    const full = `${subsystem}:${event}`;
    if (!this.ids.has(full)) {
      const id = tracepointId(this.root, subsystem, event);
      if (id === undefined) return undefined;
      this.ids.set(full, id);
    }
    return this.def(full);
  }

  /** The tracepoint with this id: those already resolved first, then the whole list. */
  nameOfId(id: number): string | undefined {
    for (const [name, known] of this.ids) if (known === id) return name;
    for (const d of this.events()) {
      try {
        if (d.code === id) return d.name;
      } catch {
        // vanished since listing (a removed probe): not this one
      }
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Dynamic PMUs from sysfs

/** Files beside an alias that describe it rather than name an event. */
const ALIAS_SIDE_FILES = ['.scale', '.unit', '.per-pkg', '.snapshot'];

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1').trim();
  } catch {
    return undefined;
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path).sort();
  } catch {
    return [];
  }
}

/** PMUs that exist but that a name and config words cannot drive, with why. */
const UNUSABLE_PMUS: Record<string, string> = {
  breakpoint:
    'hardware breakpoints need an address, length and access type (perf mem:ADDR/LEN:rwx), which an event name cannot carry',
  kprobe:
    'kprobe events need a kernel function address or name passed by pointer in config1; create a probe tracepoint (perf probe) and use it as a TRACEPOINT instead',
  uprobe:
    'uprobe events need a binary path passed by pointer in config1 and an offset in config2; create a probe tracepoint (perf probe -x) and use it as a TRACEPOINT instead',
};

class PmuClass implements EventClassInfo {
  readonly family = 'PMU';
  readonly available: boolean;
  readonly unavailableReason?: string;
  readonly canSample: boolean;
  readonly modeFilter?: boolean;
  readonly perProcess?: boolean;
  readonly cpumask?: readonly number[];
  private readonly dir: string;
  private readonly aliasNames: string[];
  private readonly sideFiles: Set<string>;
  private formatList?: FormatField[];
  private readonly termCache = new Map<string, Term[]>();
  private list?: EventDef[];
  private index?: EventIndex;

  constructor(
    readonly name: string,
    readonly perfType: number,
  ) {
    this.dir = `${PMU_DIR}/${name}`;
    const files = listDir(`${this.dir}/events`);
    this.sideFiles = new Set(files.filter((f) => ALIAS_SIDE_FILES.some((s) => f.endsWith(s))));
    this.aliasNames = files.filter((f) => !this.sideFiles.has(f));
    const mask = readText(`${this.dir}/cpumask`);
    if (mask !== undefined && mask !== '') this.cpumask = parseCpuList(mask, `${this.dir}/cpumask`);

    const unusable = UNUSABLE_PMUS[name];
    if (unusable !== undefined) {
      this.available = false;
      this.unavailableReason = unusable;
      this.canSample = false;
      return;
    }
    const probed = this.probe();
    this.available = probed.ok;
    if (!probed.ok) this.unavailableReason = probed.reason;
    this.canSample = probed.ok && tryOpen({ ...probed.how, sample: PROBE_PERIOD }) === undefined;
    if (probed.ok && probed.how.userOnly === false) this.modeFilter = false;
    if (probed.ok && probed.how.pid === -1) this.perProcess = false;
  }

  /**
   * Opens a representative event: per process, restricted to user mode; then
   * without exclusions (PMUs that count every mode at once refuse them); then,
   * for per-CPU PMUs, on the first CPU of their cpumask.
   */
  private probe(): { ok: true; how: Probe } | { ok: false; reason: string } {
    let perf: PerfConfig;
    let what: string;
    try {
      const alias = this.aliasNames.find((a) => !this.aliasTerms(a)!.some((t) => t.value === '?'));
      if (alias !== undefined) {
        // Encode just this alias: events() would read every alias file at startup.
        perf = perfFromWords(this.perfType, encodeTerms(this, this.aliasTerms(alias)!, `${this.dir}/events/${alias}`, true).words);
        what = `${this.name}/${alias}/`;
      } else {
        perf = { type: this.perfType, config: 0n };
        what = `${this.name}/config=0/`;
      }
    } catch (e) {
      return { ok: false, reason: (e as Error).message };
    }
    const attempts: [string, Probe][] = [
      ['user mode only', { perf, userOnly: true }],
      ['all modes', { perf, userOnly: false }],
    ];
    const cpu = this.cpumask?.[0];
    // Per-CPU (uncore) counters see every task's work at once and cannot tell modes apart.
    if (cpu !== undefined) attempts.push([`cpu ${cpu}, all tasks`, { perf, userOnly: false, pid: -1, cpu }]);
    const failures: string[] = [];
    let denied = false;
    for (const [label, how] of attempts) {
      const errno = tryOpen(how);
      if (errno === undefined) return { ok: true, how };
      failures.push(`${label}: ${errno}`);
      denied ||= errno === 'EACCES' || errno === 'EPERM';
    }
    const note = denied ? ` (perf_event_paranoid=${paranoidLevel()}; needs root or CAP_PERFMON)` : '';
    return { ok: false, reason: `perf_event_open(${what}) failed (${failures.join('; ')})${note}` };
  }

  formats(): FormatField[] {
    if (!this.formatList) {
      this.formatList = listDir(`${this.dir}/format`).map((f) => {
        const path = `${this.dir}/format/${f}`;
        return parseFormat(f, readText(path) ?? '', path);
      });
    }
    return this.formatList;
  }

  aliasTerms(alias: string): Term[] | undefined {
    if (!this.aliasNames.includes(alias)) return undefined;
    let terms = this.termCache.get(alias);
    if (!terms) {
      const path = `${this.dir}/events/${alias}`;
      terms = parseTerms(readText(path) ?? '', path);
      this.termCache.set(alias, terms);
    }
    return terms;
  }

  events(): EventDef[] {
    if (!this.list) {
      this.list = this.aliasNames.map((alias, code) => {
        const where = `${this.dir}/events/${alias}`;
        const { words, pending } = encodeTerms(this, this.aliasTerms(alias)!, where, true);
        const def: EventDef = { name: alias, code, perf: perfFromWords(this.perfType, words) };
        const notes: string[] = [];
        if (pending.size > 0) notes.push(`needs ${[...pending].map((t) => `${t}=<value>`).join(',')}`);
        const unit = this.sideFiles.has(`${alias}.unit`) ? readText(`${where}.unit`) : undefined;
        const scale = this.sideFiles.has(`${alias}.scale`) ? readText(`${where}.scale`) : undefined;
        if (unit) notes.push(`unit ${unit}`);
        if (scale) notes.push(`scale ${scale}`);
        if (notes.length > 0) def.description = notes.join(', ');
        return def;
      });
    }
    return this.list;
  }

  findEvent(name: string, loose: boolean): EventDef | undefined {
    this.index ??= new EventIndex(this.events());
    return this.index.find(name, loose);
  }
}

function perfFromWords(type: number, w: ConfigWords): PerfConfig {
  const perf: PerfConfig = { type, config: w.config };
  if (w.config1 !== 0n) perf.config1 = w.config1;
  if (w.config2 !== 0n) perf.config2 = w.config2;
  return perf;
}

function pmuClasses(): EventClassInfo[] {
  const out: EventClassInfo[] = [];
  for (const name of listDir(PMU_DIR)) {
    const type = Number(readText(`${PMU_DIR}/${name}/type`));
    if (!Number.isInteger(type) || type === PerfType.SOFTWARE || type === PerfType.TRACEPOINT) continue;
    out.push(new PmuClass(name, type));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Discovery

let discovered: EventClassInfo[] | undefined;

/** Every event class of this machine, probed once per process. */
export function discoverEventClasses(): EventClassInfo[] {
  discovered ??= [
    probedClass('SOFT', PerfType.SOFTWARE, SOFTWARE_EVENTS),
    probedClass('HW', PerfType.HARDWARE, HARDWARE_EVENTS, 'no hardware PMU'),
    probedClass('CACHE', PerfType.HW_CACHE, cacheEvents(), 'no hardware PMU'),
    new TracepointClass(),
    ...pmuClasses(),
  ];
  return discovered;
}

// ---------------------------------------------------------------------------
// Resolution

export interface ResolvedEvent {
  cls: EventClassInfo;
  event: EventDef;
}

const PMU_SPEC_RE = /^([^/\s]+)\/(.*)\/$/;

/**
 * Finds the class and event a name means: a PMU term spec (`msr/tsc/`,
 * `cpu/event=0x3c,umask=0x0/`), else the exact perf name in class order,
 * else the pmc_match_event_name match, else `<CLASS>-<event>`.
 */
export function resolveEvent(classes: EventClassInfo[], name: string): ResolvedEvent {
  const spec = name.trim();
  if (spec === '') throw new PmcError('EINVAL', 'empty event name');
  if (spec.includes('/')) return resolvePmuSpec(classes, spec);

  // Classes are in preference order: the first usable match wins; a match in an
  // unusable class is kept only to say why when nothing usable matches.
  let unavailable: ResolvedEvent | undefined;
  const search = (lookup: (cls: EventClassInfo) => EventDef | undefined): ResolvedEvent | undefined => {
    for (const cls of classes) {
      const event = lookup(cls);
      if (!event) continue;
      if (cls.available) return { cls, event };
      unavailable ??= { cls, event };
    }
    return undefined;
  };
  const hit =
    search((cls) => findIn(cls, spec, false)) ??
    search((cls) => findIn(cls, spec, true)) ??
    search((cls) => {
      const rest = stripClassPrefix(spec, cls.name);
      return rest === undefined ? undefined : (findIn(cls, rest, false) ?? findIn(cls, rest, true));
    });
  if (hit) return hit;

  if (unavailable) throw notAvailable(unavailable.cls, `event "${spec}"`);
  for (const cls of classes) {
    const errno = cls.rejected?.get(spec);
    if (errno) throw new PmcError('ENOENT', `event "${spec}" of class ${cls.name} is not supported here: perf_event_open failed with ${errno}`);
  }
  const tracepoints = classes.find((c) => c.family === 'TRACEPOINT');
  if (spec.includes(':') && tracepoints && !tracepoints.available) throw notAvailable(tracepoints, `tracepoint "${spec}"`);
  throw unknownEvent(classes, spec);
}

/** `SOFT-page-faults` -> `page-faults` for class SOFT (any of - _ . space after the class name). */
function stripClassPrefix(spec: string, className: string): string | undefined {
  if (spec.length <= className.length + 1) return undefined;
  if (spec.slice(0, className.length).toLowerCase() !== className.toLowerCase()) return undefined;
  if (!'-_. '.includes(spec[className.length]!)) return undefined;
  return spec.slice(className.length + 1);
}

function notAvailable(cls: EventClassInfo, what: string): PmcError {
  return new PmcError('ENOENT', `${what} is in class ${cls.name}, which is not available here: ${cls.unavailableReason ?? 'unknown reason'}`);
}

function resolvePmuSpec(classes: EventClassInfo[], spec: string): ResolvedEvent {
  const m = PMU_SPEC_RE.exec(spec);
  if (!m) throw new PmcError('EINVAL', `event "${spec}": expected pmu/term=value,.../ (e.g. msr/tsc/)`);
  const pmuName = m[1]!;
  const pmus = classes.filter((c) => c.family === 'PMU');
  const cls = pmus.find((c) => c.name === pmuName) ?? pmus.find((c) => c.name.toLowerCase() === pmuName.toLowerCase());
  if (!cls) {
    const here = pmus.map((c) => c.name).join(', ') || 'none';
    throw new PmcError('ENOENT', `event "${spec}": no PMU named "${pmuName}" under ${PMU_DIR} (PMUs here: ${here})`);
  }
  if (!cls.available) throw notAvailable(cls, `event "${spec}"`);
  const terms = parseTerms(m[2]!, `event "${spec}"`);
  if (terms.length === 0) throw new PmcError('EINVAL', `event "${spec}": no terms between the slashes`);

  const only = terms.length === 1 ? terms[0]! : undefined;
  const isFormat = only !== undefined && (cls.formats?.() ?? []).some((f) => f.name === only.name);
  if (only && only.value === undefined && !isFormat) {
    const alias = findIn(cls, only.name, false) ?? findIn(cls, only.name, true);
    if (alias) {
      const needs = (cls.aliasTerms?.(alias.name) ?? []).filter((t) => t.value === '?').map((t) => t.name);
      if (needs.length > 0) {
        throw new PmcError('EINVAL', `event "${spec}": ${alias.name} needs ${needs.map((t) => `${t}=<value>`).join(',')}`);
      }
      return { cls, event: alias };
    }
  }
  const { words, pending } = encodeTerms(cls, terms, `event "${spec}"`);
  if (pending.size > 0) {
    throw new PmcError('EINVAL', `event "${spec}": needs ${[...pending].map((t) => `${t}=<value>`).join(',')}`);
  }
  const perf = perfFromWords(cls.perfType, words);
  return { cls, event: { name: `${cls.name}/${terms.map((t) => t.text).join(',')}/`, code: rawSpecCode(perf), perf } };
}

/**
 * Code of a term spec that is not an alias: the high bit marks it (alias codes
 * are small indexes), the rest folds the config words so equal configs share it.
 */
function rawSpecCode(perf: PerfConfig): number {
  let h = 0;
  for (const w of [perf.config, perf.config1 ?? 0n, perf.config2 ?? 0n]) {
    h = (Math.imul(h, 0x01000193) ^ Number(w & 0xffffffffn) ^ Number(w >> 32n)) >>> 0;
  }
  return (0x80000000 | (h & 0x7fffffff)) >>> 0;
}

/** Whether a PMU event code stands for a raw term spec rather than an alias. */
export function isRawSpecCode(code: number): boolean {
  return code >= 0x80000000;
}

/**
 * The name to print for an event known by code (and, for raw PMU term specs,
 * its config words): the listed name, or a `pmu/term=value,.../` rebuilt from
 * the PMU's format fields.
 */
export function eventNameOf(cls: EventClassInfo, code: number, perf?: Partial<PerfConfig>): string | undefined {
  if (cls.family === 'PMU' && isRawSpecCode(code)) {
    if (!perf || perf.config === undefined) return undefined;
    const words: ConfigWords = { config: perf.config, config1: perf.config1 ?? 0n, config2: perf.config2 ?? 0n };
    const terms: string[] = [];
    const covered: ConfigWords = emptyConfig();
    const formats = cls.formats?.() ?? [];
    for (const f of formats) {
      const v = unpackField(words, f);
      for (const b of f.bits) covered[f.word] |= 1n << BigInt(b);
      if (v !== 0n) terms.push(`${f.name}=0x${v.toString(16)}`);
    }
    // Bits no format field covers can only be written as whole words.
    for (const w of CONFIG_WORDS) if (words[w] & ~covered[w]) terms.push(`${w}=0x${words[w].toString(16)}`);
    // An all-zero config still needs one term to be a spec.
    if (terms.length === 0) terms.push(`${formats[0]?.name ?? 'config'}=0x0`);
    return `${cls.name}/${terms.join(',')}/`;
  }
  if (cls instanceof TracepointClass) return cls.nameOfId(code);
  return cls.events().find((d) => d.code === code)?.name;
}

function unknownEvent(classes: EventClassInfo[], spec: string): PmcError {
  const suggestions = closeMatches(spec, classes);
  const hint = suggestions.length > 0 ? `; did you mean ${suggestions.join(', ')}?` : '; pmccontrol -L lists the events of each class';
  return new PmcError('ENOENT', `unknown event "${spec}"${hint}`);
}

/** Up to five listed names nearest to `spec` (edit distance on normalized names, or containing it). */
function closeMatches(spec: string, classes: EventClassInfo[]): string[] {
  const target = normalizeEventName(spec);
  const limit = Math.max(2, Math.floor(target.length / 4));
  const scored: [number, string][] = [];
  for (const cls of classes) {
    for (const def of cls.events()) {
      // Suggest the spelling that came nearest (cycles for "cycels", not cpu-cycles).
      let best: [number, string] = [Infinity, def.name];
      for (const n of namesOf(def)) {
        const k = normalizeEventName(n);
        // A tracepoint also counts as near when only its event part is.
        const colon = k.indexOf(':');
        const d = Math.min(
          editDistance(target, k, limit),
          colon >= 0 && !target.includes(':') ? editDistance(target, k.slice(colon + 1), limit) : Infinity,
          target.length >= 4 && k.includes(target) ? 1 : Infinity,
        );
        if (d < best[0]) best = [d, n];
      }
      if (best[0] <= limit) scored.push(best);
    }
  }
  scored.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
  return [...new Set(scored.map(([, n]) => n))].slice(0, 5);
}

/** Levenshtein distance, or Infinity once it must exceed `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > limit) return Infinity;
    prev = cur;
  }
  return prev[b.length]! <= limit ? prev[b.length]! : Infinity;
}
