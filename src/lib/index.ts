// tspmc's public API: libpmc and its conveniences.
export { Libpmc, type AllocateOptions, type AllocatedPmc } from './libpmc.js';
export { countCommand, countFunction, type CommandCount, type EventCount } from './count.js';
export { parseEventSpec, type EventSpec } from './event-spec.js';
export { launchHeld, findExecutable, type LaunchedCommand } from './launch.js';
export { LocalModuleClient, type ModuleClient } from './module-client.js';
export type { PmcdClient } from './pmcd-client.js';
export { openModuleClient, connectPmcd, DEFAULT_PMCD_SOCKET } from './open-client.js';
export type { OpArgs, OpResult, CpuInfo, PmcInfo, OwnerStats } from '../module/op-table.js';
export { onlineCpus } from './cpu-list.js';
export { PmcError, isPmcError, type ErrnoName } from '../pmc-error.js';
export { type ModeName, PmcMode, PmcOp, PmcState, PmcFlags, PmcCaps, RowDisposition, makePmcId, pmcIdToCpu, pmcIdToMode, pmcIdToClass, pmcIdToRow } from '../module/pmc-types.js';
export { attachTargets, findTargetProcesses } from './targets.js';
