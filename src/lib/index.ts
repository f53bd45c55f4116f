// tspmc's public API: libpmc and its conveniences.
export { Libpmc, type AllocateOptions, type AllocatedPmc, type ModeName } from './libpmc.js';
export { countCommand, countFunction, type CommandCount, type EventCount } from './count.js';
export { parseEventSpec, type EventSpec } from './event-spec.js';
export { launchStopped, findExecutable, type LaunchedCommand } from './launch.js';
export { LocalModuleClient, type ModuleClient } from './module-client.js';
export { onlineCpus } from './cpu-list.js';
export { PmcError, isPmcError, type ErrnoName } from '../pmc-error.js';
export { PmcMode, PmcState, PmcFlags, PmcCaps, RowDisposition, makePmcId, pmcIdToCpu, pmcIdToMode, pmcIdToClass, pmcIdToRow } from '../module/pmc-types.js';
export { findTargetProcesses } from './targets.js';
