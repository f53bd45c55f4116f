// Loading the module on this machine: the MD classes found here, the
// tunables, the CPUs (hwpmc's load-time pmc_initialize()), and the event
// catalog that resolves specifiers for RESOLVEEVENT.
import { onlineCpus, possibleCpuCount } from '../os/cpus.js';
import type { EventClassInfo } from '../md/event-class.js';
import { discoverEventClasses } from '../md/event-families.js';
import { resolveEvent } from '../md/event-resolve.js';
import { MachineForkWatch } from '../md/machine-fork-watch.js';
import { machineClasses } from '../md/machine.js';
import { DEFAULT_ADMIN_STATE } from './admin-state.js';
import type { SpecResolution } from './admin-ops.js';
import { PmcModule } from './pmc-module.js';
import { loadTunables, type TunableSources } from './tunables.js';

/** `serving`: the module serves many owners (pmcd), so what their attaches share stays open between them. */
export function loadModule(sources: TunableSources = {}, { serving = false }: { serving?: boolean } = {}): PmcModule {
  if (serving) MachineForkWatch.keepOpen();
  const catalog = discoverEventClasses();
  return new PmcModule({
    classes: machineClasses(catalog),
    tunables: loadTunables(sources),
    ncpu: possibleCpuCount(),
    activeCpus: onlineCpus(),
    adminStatePath: process.env.TSPMC_ADMIN_STATE ?? DEFAULT_ADMIN_STATE,
    resolveSpec: (spec) => resolveSpec(catalog, spec),
  });
}

function resolveSpec(catalog: readonly EventClassInfo[], spec: string): SpecResolution {
  // A raw PMU term spec has no event of its own: its config words travel as the MD part.
  const { cls, event, md } = resolveEvent(catalog, spec);
  return { className: cls.name, event: event.code, eventName: event.name, md };
}
