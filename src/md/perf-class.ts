// A PMC class backed by a perf event family (SOFT, HW, CACHE, TRACEPOINT or a
// dynamic PMU): turns the module's requests into perf_event_attr and opens
// the counters.
import { PmcCaps } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import type { ClassDep, ClassEvent, HwCounterSet, HwRequest, Inheritance } from './class-dep.js';
import { CountingSet } from './counting-set.js';
import { CswCountingSet } from './csw-counting-set.js';
import type { EventClassInfo, PerfConfig } from './event-class.js';
import type { PerfEventAttr } from './perf-attr.js';
import { SamplingSet } from './sampling-set.js';

export class PerfClass implements ClassDep {
  readonly width = 64;

  constructor(readonly info: EventClassInfo) {}

  /** Asks the kernel on first use (whether the class samples, whether it filters modes). */
  get caps(): number {
    // A PMU that cannot tell user from kernel mode (msr) has neither USER nor SYSTEM: a qualifier is refused.
    const modes = this.info.modeFilter ? PmcCaps.USER | PmcCaps.SYSTEM : 0;
    return PmcCaps.READ | PmcCaps.WRITE | modes | (this.info.canSample ? PmcCaps.INTERRUPT : 0);
  }

  get classId(): number {
    return this.info.classId;
  }
  get rows(): number {
    return this.info.rows;
  }
  get name(): string {
    return this.info.name;
  }
  get available(): boolean {
    return this.info.available;
  }
  get unavailableReason(): string | undefined {
    return this.info.unavailableReason;
  }

  events(): ClassEvent[] {
    return this.info.events().map((e) => ({ name: e.name, code: e.code, description: e.description }));
  }

  eventName(code: number, md?: HwRequest['md']): string {
    return this.info.eventName(code, md) ?? `${this.info.name}-0x${code.toString(16)}`;
  }

  private perfConfig(request: HwRequest): PerfConfig {
    if (request.md) return { type: this.info.perfType, ...request.md };
    const perf = this.info.perfConfig(request.event);
    if (!perf) throw new PmcError('EINVAL', `class ${this.info.name} has no event with code 0x${request.event.toString(16)}`);
    return perf;
  }

  validate(request: HwRequest): void {
    if (request.sampling && !this.info.canSample) throw new PmcError('EOPNOTSUPP', `events of class ${this.info.name} cannot sample`);
    if (request.sampling && request.reloadCount <= 0n) throw new PmcError('EINVAL', 'a sampling PMC needs a rate above 0');
    this.perfConfig(request);
  }

  private attr(request: HwRequest): PerfEventAttr {
    const p = this.perfConfig(request);
    return {
      type: p.type,
      config: p.config,
      config1: p.config1,
      config2: p.config2,
      flags:
        !this.info.modeFilter
          ? {}
          : { excludeUser: !request.countUser, excludeKernel: !request.countKernel, excludeHv: !request.countKernel },
    };
  }

  openProcess(request: HwRequest, pid: number, inheritance: Inheritance, groupScope?: object): HwCounterSet {
    if (!this.info.perProcess) throw new PmcError('EINVAL', `class ${this.info.name} counts per CPU only: use a system-mode PMC`);
    const attr = this.attr(request);
    if (request.sampling) return SamplingSet.forProcess(attr, request, pid, inheritance);
    if (request.contextSwitchValues) return CswCountingSet.forProcess(attr, pid, inheritance);
    return CountingSet.forProcess(attr, pid, inheritance, request.processCounts, groupScope);
  }

  openCpu(request: HwRequest, cpu: number, groupScope?: object): HwCounterSet {
    const attr = this.attr(request);
    return request.sampling ? SamplingSet.forCpu(attr, request, cpu) : CountingSet.forCpu(attr, cpu, groupScope);
  }
}
