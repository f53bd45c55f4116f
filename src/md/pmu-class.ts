// PMU: one class per dynamic PMU under /sys/bus/event_source/devices (msr,
// uncore units, a core PMU): events are the PMU's events/* aliases, and any
// pmu/term=value,.../ spec its format/* fields can encode (perf's util/pmu.c).
import { readdirSync, readFileSync } from 'node:fs';
import { parseCpuList, PmcClass } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import type { EventClassInfo, EventDef, MdConfig, PerfConfig, ResolvedEvent } from './event-class.js';
import { normalizeEventName } from './event-names.js';
import { isPermissionErrno, type Opener, permissionNote, type Probe, PROBE_PERIOD, tryOpen } from './event-probe.js';
import { PerfType } from './perf-attr.js';
import {
  CONFIG_WORDS,
  type ConfigWords,
  emptyConfig,
  encodeTerms,
  type FormatField,
  parseFormat,
  parseTerms,
  type Term,
  type TermVocabulary,
  unpackField,
} from './pmu-format.js';

const PMU_DIR = '/sys/bus/event_source/devices';
/** Counters per PMU: the kernel does not say; a few each. */
const PMU_ROWS = 4;

/** What a PMU's description says (its sysfs directory), read on demand. */
export interface PmuSource {
  /** The events/* aliases, sorted: an alias's code is its index here. */
  aliasNames(): readonly string[];
  aliasTerms(alias: string): Term[] | undefined;
  /** Unit and scale of an alias, for its description. */
  aliasNotes(alias: string): string[];
  formats(): FormatField[];
  /** The CPUs a per-CPU PMU counts on, when it says. */
  cpumask(): readonly number[] | undefined;
  /** Names an alias's file in messages. */
  where(alias: string): string;
}

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

/** A PMU's sysfs directory; each file is read once, when first needed. */
class SysfsPmu implements PmuSource {
  private files?: string[];
  private names?: string[];
  private formatList?: FormatField[];
  private mask?: { cpus: readonly number[] | undefined };
  private readonly termCache = new Map<string, Term[]>();

  constructor(readonly dir: string) {}

  private eventFiles(): string[] {
    this.files ??= listDir(`${this.dir}/events`);
    return this.files;
  }

  aliasNames(): readonly string[] {
    this.names ??= this.eventFiles().filter((f) => !ALIAS_SIDE_FILES.some((s) => f.endsWith(s)));
    return this.names;
  }

  aliasTerms(alias: string): Term[] | undefined {
    if (!this.aliasNames().includes(alias)) return undefined;
    let terms = this.termCache.get(alias);
    if (!terms) {
      terms = parseTerms(readText(this.where(alias)) ?? '', this.where(alias));
      this.termCache.set(alias, terms);
    }
    return terms;
  }

  aliasNotes(alias: string): string[] {
    const side = (suffix: string): string | undefined =>
      this.eventFiles().includes(`${alias}${suffix}`) ? readText(`${this.where(alias)}${suffix}`) : undefined;
    const unit = side('.unit');
    const scale = side('.scale');
    return [...(unit ? [`unit ${unit}`] : []), ...(scale ? [`scale ${scale}`] : [])];
  }

  formats(): FormatField[] {
    this.formatList ??= listDir(`${this.dir}/format`).map((f) => {
      const path = `${this.dir}/format/${f}`;
      return parseFormat(f, readText(path) ?? '', path);
    });
    return this.formatList;
  }

  cpumask(): readonly number[] | undefined {
    if (!this.mask) {
      const text = readText(`${this.dir}/cpumask`);
      this.mask = { cpus: text !== undefined && text !== '' ? parseCpuList(text, `${this.dir}/cpumask`) : undefined };
    }
    return this.mask.cpus;
  }

  where(alias: string): string {
    return `${this.dir}/events/${alias}`;
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

export interface PmuOptions {
  /** Default: the PMU's sysfs directory. */
  source?: PmuSource;
  /** Why the PMU cannot be used at all, without asking the kernel (default: UNUSABLE_PMUS). */
  unusable?: string;
  open?: Opener;
}

type PmuProbe = { ok: true; how: Probe } | { ok: false; reason: string };

export class PmuClass implements EventClassInfo, TermVocabulary {
  readonly family = 'PMU';
  private readonly source: PmuSource;
  private readonly unusable?: string;
  private readonly open: Opener;
  private probed?: PmuProbe;
  private sampleVerdict?: boolean;
  private readonly defs = new Map<string, EventDef>();

  constructor(
    readonly name: string,
    readonly perfType: number,
    readonly classId: number,
    options: PmuOptions = {},
  ) {
    this.source = options.source ?? new SysfsPmu(`${PMU_DIR}/${name}`);
    this.unusable = options.unusable ?? UNUSABLE_PMUS[name];
    this.open = options.open ?? tryOpen;
  }

  get cpumask(): readonly number[] | undefined {
    return this.source.cpumask();
  }

  private get probe(): PmuProbe {
    this.probed ??= this.unusable !== undefined ? { ok: false, reason: this.unusable } : this.probeKernel();
    return this.probed;
  }

  /**
   * Opens a representative event: per process, restricted to user mode; then
   * without exclusions (PMUs that count every mode at once refuse them); then,
   * for per-CPU PMUs, on the first CPU of their cpumask.
   */
  private probeKernel(): PmuProbe {
    let perf: PerfConfig;
    let what: string;
    try {
      const alias = this.source.aliasNames().find((a) => !this.source.aliasTerms(a)!.some((t) => t.value === '?'));
      if (alias !== undefined) {
        perf = perfFromWords(this.perfType, encodeTerms(this, this.source.aliasTerms(alias)!, this.source.where(alias), true).words);
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
      const errno = this.open(how);
      if (errno === undefined) return { ok: true, how };
      failures.push(`${label}: ${errno}`);
      denied ||= isPermissionErrno(errno);
    }
    const note = denied ? ` (${permissionNote()})` : '';
    return { ok: false, reason: `perf_event_open(${what}) failed (${failures.join('; ')})${note}` };
  }

  get available(): boolean {
    return this.probe.ok;
  }
  get unavailableReason(): string | undefined {
    const p = this.probe;
    return p.ok ? undefined : p.reason;
  }
  get canSample(): boolean {
    const p = this.probe;
    this.sampleVerdict ??= p.ok && this.open({ ...p.how, sample: PROBE_PERIOD }) === undefined;
    return this.sampleVerdict;
  }
  get modeFilter(): boolean {
    const p = this.probe;
    return !p.ok || p.how.userOnly !== false;
  }
  get perProcess(): boolean {
    const p = this.probe;
    return !p.ok || p.how.pid !== -1;
  }
  get rows(): number {
    return this.available ? PMU_ROWS : 0;
  }

  formats(): FormatField[] {
    return this.source.formats();
  }
  aliasTerms(alias: string): Term[] | undefined {
    return this.source.aliasTerms(alias);
  }

  /** The alias as an event: its code is its index, its config what its terms encode to. */
  private def(alias: string): EventDef {
    let def = this.defs.get(alias);
    if (!def) {
      const { words, pending } = encodeTerms(this, this.source.aliasTerms(alias)!, this.source.where(alias), true);
      def = { name: alias, code: this.source.aliasNames().indexOf(alias), perf: perfFromWords(this.perfType, words) };
      const notes = pending.size > 0 ? [`needs ${[...pending].map((t) => `${t}=<value>`).join(',')}`] : [];
      notes.push(...this.source.aliasNotes(alias));
      if (notes.length > 0) def.description = notes.join(', ');
      this.defs.set(alias, def);
    }
    return def;
  }

  events(): EventDef[] {
    return this.source.aliasNames().map((a) => this.def(a));
  }

  findEvent(name: string, loose: boolean): EventDef | undefined {
    const aliases = this.source.aliasNames();
    const key = loose ? normalizeEventName(name) : name;
    const alias = aliases.find((a) => (loose ? normalizeEventName(a) : a) === key);
    return alias === undefined ? undefined : this.def(alias);
  }

  rejection(): undefined {
    return undefined;
  }

  /**
   * The name to print for an event known by code (and, for raw term specs,
   * its config words): the alias, or a `pmu/term=value,.../` rebuilt from the
   * PMU's format fields.
   */
  eventName(code: number, md?: Partial<MdConfig>): string | undefined {
    if (!isRawSpecCode(code)) {
      const alias = this.source.aliasNames()[code];
      return alias;
    }
    if (!md || md.config === undefined) return undefined;
    const words: ConfigWords = { config: md.config, config1: md.config1 ?? 0n, config2: md.config2 ?? 0n };
    const terms: string[] = [];
    const covered: ConfigWords = emptyConfig();
    const formats = this.formats();
    for (const f of formats) {
      const v = unpackField(words, f);
      for (const b of f.bits) covered[f.word] |= 1n << BigInt(b);
      if (v !== 0n) terms.push(`${f.name}=0x${v.toString(16)}`);
    }
    // Bits no format field covers can only be written as whole words.
    for (const w of CONFIG_WORDS) if (words[w] & ~covered[w]) terms.push(`${w}=0x${words[w].toString(16)}`);
    // An all-zero config still needs one term to be a spec.
    if (terms.length === 0) terms.push(`${formats[0]?.name ?? 'config'}=0x0`);
    return `${this.name}/${terms.join(',')}/`;
  }

  perfConfig(code: number): PerfConfig | undefined {
    const alias = this.source.aliasNames()[code];
    return alias === undefined ? undefined : this.def(alias).perf;
  }

  /**
   * A term list: one bare alias is that event (its placeholders must be
   * given); anything else is encoded through the format fields into a raw
   * event, which the module is given by its config words.
   */
  termSpec(text: string, spec: string): ResolvedEvent {
    const terms = parseTerms(text, `event "${spec}"`);
    if (terms.length === 0) throw new PmcError('EINVAL', `event "${spec}": no terms between the slashes`);

    const only = terms.length === 1 ? terms[0]! : undefined;
    const isFormat = only !== undefined && this.formats().some((f) => f.name === only.name);
    if (only && only.value === undefined && !isFormat) {
      const alias = this.findEvent(only.name, false) ?? this.findEvent(only.name, true);
      if (alias) {
        const needs = (this.aliasTerms(alias.name) ?? []).filter((t) => t.value === '?').map((t) => t.name);
        if (needs.length > 0) {
          throw new PmcError('EINVAL', `event "${spec}": ${alias.name} needs ${needs.map((t) => `${t}=<value>`).join(',')}`);
        }
        return { cls: this, event: alias };
      }
    }
    const { words, pending } = encodeTerms(this, terms, `event "${spec}"`);
    if (pending.size > 0) {
      throw new PmcError('EINVAL', `event "${spec}": needs ${[...pending].map((t) => `${t}=<value>`).join(',')}`);
    }
    const perf = perfFromWords(this.perfType, words);
    const event: EventDef = { name: `${this.name}/${terms.map((t) => t.text).join(',')}/`, code: rawSpecCode(perf), perf };
    return { cls: this, event, md: { config: perf.config, config1: perf.config1, config2: perf.config2 } };
  }
}

function perfFromWords(type: number, w: ConfigWords): PerfConfig {
  const perf: PerfConfig = { type, config: w.config };
  if (w.config1 !== 0n) perf.config1 = w.config1;
  if (w.config2 !== 0n) perf.config2 = w.config2;
  return perf;
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

function isRawSpecCode(code: number): boolean {
  return code >= 0x80000000;
}

/** One class per PMU directory, in name order (software and tracepoint have their own families). */
export function pmuClasses(): EventClassInfo[] {
  const out: EventClassInfo[] = [];
  for (const name of listDir(PMU_DIR)) {
    const type = Number(readText(`${PMU_DIR}/${name}/type`));
    if (!Number.isInteger(type) || type === PerfType.SOFTWARE || type === PerfType.TRACEPOINT) continue;
    out.push(new PmuClass(name, type, PmcClass.PMU_BASE + out.length));
  }
  return out;
}
