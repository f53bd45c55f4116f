// Loading the module on this machine: the MD classes found here, the
// tunables, the CPUs (hwpmc's load-time pmc_initialize()).
import { onlineCpus, possibleCpuCount } from '../md/cpus.js';
import { machineClasses } from '../md/machine.js';
import { DEFAULT_ADMIN_STATE } from './admin-state.js';
import { PmcModule } from './pmc-module.js';
import { loadTunables, type TunableSources } from './tunables.js';

export function loadModule(sources: TunableSources = {}): PmcModule {
  return new PmcModule({
    classes: machineClasses(),
    tunables: loadTunables(sources),
    ncpu: possibleCpuCount(),
    activeCpus: onlineCpus(),
    adminStatePath: process.env.TSPMC_ADMIN_STATE ?? DEFAULT_ADMIN_STATE,
  });
}
