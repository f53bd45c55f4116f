// TRACEPOINT: the kernel's static tracepoints, named subsystem:event, found in
// tracefs and opened by id (PERF_TYPE_TRACEPOINT).
import { readFileSync } from 'node:fs';
import { PmcClass } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import type { EventClassInfo, EventDef, PerfConfig } from './event-class.js';
import { editDistance, normalizeEventName } from './event-names.js';
import { openFailure, type Opener, tryOpen } from './event-probe.js';
import { PerfType } from './perf-attr.js';
import { SOFT_ROWS } from './soft-events.js';
import { locateTracefs, type TracefsLocation, tracepointEvents, tracepointId, tracepointSubsystems } from './tracefs.js';

class TracepointClass implements EventClassInfo {
  readonly family = 'TRACEPOINT';
  readonly name = 'TRACEPOINT';
  readonly perfType = PerfType.TRACEPOINT;
  readonly classId = PmcClass.TRACEPOINT;
  readonly modeFilter = true;
  readonly perProcess = true;
  private where?: TracefsLocation;
  private permission?: { ok: true } | { ok: false; reason: string };
  /** Every def handed out, by name, so a tracepoint is one object (and one code) per run. */
  private readonly known = new Map<string, EventDef>();
  private readonly ids = new Map<string, number>();
  private listed?: EventDef[];

  constructor(private readonly open: Opener = tryOpen) {}

  /** tracefs, found (or mounted) on first need. */
  private get root(): string | undefined {
    this.where ??= locateTracefs();
    return 'root' in this.where ? this.where.root : undefined;
  }

  /**
   * Opening a tracepoint event registers a kernel probe, and closing it waits
   * for RCU: 10-30 ms each, too slow to probe with. What a tracepoint needs
   * beyond a readable tracefs is permission for kernel-mode events (tracepoints
   * fire in the kernel, so exclude_kernel would hide them all); a software
   * event without exclude_kernel asks the kernel exactly that.
   */
  private get state(): { ok: true } | { ok: false; reason: string } {
    if (!this.permission) {
      if (this.root === undefined) this.permission = { ok: false, reason: (this.where as { reason: string }).reason };
      else {
        const errno = this.open({ perf: { type: PerfType.SOFTWARE, config: 0n }, userOnly: false });
        this.permission =
          errno === undefined
            ? { ok: true }
            : { ok: false, reason: `tracepoints count in kernel mode, which is not permitted here: ${openFailure('cpu-clock without exclude_kernel', errno)}` };
      }
    }
    return this.permission;
  }

  get available(): boolean {
    return this.state.ok;
  }
  get unavailableReason(): string | undefined {
    const s = this.state;
    return s.ok ? undefined : s.reason;
  }
  /** The tracepoint PMU samples any event with any period (period 1 = every hit). */
  get canSample(): boolean {
    return this.available;
  }
  /** No hardware limit: the SOFT class size. */
  get rows(): number {
    return this.available ? SOFT_ROWS : 0;
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
    const root = this.root;
    if (root === undefined) return [];
    if (!this.listed) {
      // available_events is the kernel's own list: one read instead of thousands of readdirs.
      let text = '';
      try {
        text = readFileSync(`${root}/available_events`, 'latin1');
      } catch {
        for (const s of tracepointSubsystems(root)) for (const e of tracepointEvents(root, s)) text += `${s}:${e}\n`;
      }
      const names = text.split('\n').filter((l) => l.includes(':')).sort();
      this.listed = names.map((n) => this.def(n));
    }
    return this.listed;
  }

  findEvent(name: string, loose: boolean): EventDef | undefined {
    const colon = name.indexOf(':');
    if (colon <= 0) return undefined;
    const root = this.root;
    if (root === undefined) return undefined;
    let subsystem = name.slice(0, colon);
    let event = name.slice(colon + 1);
    if (loose) {
      const s = tracepointSubsystems(root).find((x) => normalizeEventName(x) === normalizeEventName(subsystem));
      if (s === undefined) return undefined;
      const e = tracepointEvents(root, s).find((x) => normalizeEventName(x) === normalizeEventName(event));
      if (e === undefined) return undefined;
      subsystem = s;
      event = e;
    }
    const full = `${subsystem}:${event}`;
    if (!this.ids.has(full)) {
      const id = tracepointId(root, subsystem, event);
      if (id === undefined) return undefined;
      this.ids.set(full, id);
    }
    return this.def(full);
  }

  rejection(): undefined {
    return undefined;
  }

  /** subsystem:event is tracepoint syntax: if this class is unavailable, such a name says why. */
  ownsName(name: string): boolean {
    return name.includes(':');
  }

  /** A tracepoint is also near when only its event part is (sched_swich for sched:sched_switch). */
  distance(target: string, name: string, limit: number): number {
    const colon = name.indexOf(':');
    const whole = editDistance(target, name, limit);
    return colon >= 0 && !target.includes(':') ? Math.min(whole, editDistance(target, name.slice(colon + 1), limit)) : whole;
  }

  /** The tracepoint with this id: those already resolved first, then the whole list. */
  eventName(id: number): string | undefined {
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

  /** Codes are the tracepoint ids: no need to list thousands of tracepoints to open one. */
  perfConfig(id: number): PerfConfig {
    return { type: PerfType.TRACEPOINT, config: BigInt(id) };
  }
}

export function tracepointClasses(): EventClassInfo[] {
  return [new TracepointClass()];
}
