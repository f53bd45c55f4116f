// Who is making a module call: the process on whose behalf an op runs.
// In-process callers are this Node process; pmcd callers are socket peers.
import { CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE, type Credentials, hasCapability, readCredentials, readSysctl } from '../os/procfs.js';
import { PmcCaps } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import type { Tunables } from './tunables.js';

export interface Caller {
  pid: number;
  creds: Credentials;
  /** A pmcd peer in another PID namespace: hwpmc's jailed process. */
  jailed?: boolean;
  /**
   * pmcd: the connection this caller speaks on. Each connection is an owner
   * of its own (two in one process do not share PMCs); in-process callers
   * are owners by pid.
   */
  session?: number;
  /** pmcd: file descriptors in this caller's requests were received for the module, which closes them. */
  passesFds?: boolean;
}

/** The key of the caller's owner: its pmcd connection, else its pid. */
export function ownerKey(caller: Caller): number {
  return caller.session ?? caller.pid;
}

export function selfCaller(): Caller {
  const creds = readCredentials(process.pid);
  if (!creds) throw new PmcError('ESRCH', 'cannot read /proc/self/status');
  return { pid: process.pid, creds };
}

/** priv_check(PRIV_PMC_SYSTEM / PRIV_PMC_MANAGE): root, CAP_PERFMON or CAP_SYS_ADMIN. */
export function isPmcPrivileged(c: Credentials): boolean {
  return c.euid === 0 || hasCapability(c, CAP_PERFMON) || hasCapability(c, CAP_SYS_ADMIN);
}

/** perf_event_paranoid >= 2 forbids kernel profiling to callers without CAP_PERFMON. */
function kernelProfilingAllowed(c: Credentials): boolean {
  const paranoid = Number(readSysctl('kernel.perf_event_paranoid') ?? 2);
  return paranoid < 2 || isPmcPrivileged(c);
}

export const KERNEL_MODE_REFUSED = 'kernel mode is for root and CAP_PERFMON only, unless the administrator sets the unprivileged_kernel_callchains tunable';

/**
 * Kernel-mode counts, samples and call-chain frames are for privileged
 * callers, for everyone with the unprivileged_kernel_callchains tunable, and
 * where perf_event_paranoid lets every user profile the kernel. True when a
 * class whose events can be limited to user or kernel mode (`classCaps`) must
 * count user mode only for this caller.
 */
export function kernelModeDenied(caller: Caller, tunables: Tunables, classCaps: number): boolean {
  const hasModes = (classCaps & (PmcCaps.USER | PmcCaps.SYSTEM)) === (PmcCaps.USER | PmcCaps.SYSTEM);
  return hasModes && !tunables.unprivileged_kernel_callchains && !kernelProfilingAllowed(caller.creds);
}

/**
 * pmc_can_attach(): the owner's effective uid must be one of the target's
 * uids, and every group of the target (effective, supplementary, real,
 * saved) must be among the owner's groups (effective and supplementary).
 */
export function pmcCanAttach(owner: Credentials, target: Credentials): boolean {
  if (owner.euid !== target.euid && owner.euid !== target.suid && owner.euid !== target.ruid) return false;
  const ownerGroups = new Set([owner.egid, ...owner.groups]);
  const targetGroups = [target.egid, ...target.groups, target.rgid, target.sgid];
  return targetGroups.every((g) => ownerGroups.has(g));
}

/** p_candebug(): privileged debuggers may attach anywhere; others as pmc_can_attach allows. */
export function canDebug(owner: Credentials, target: Credentials): boolean {
  return debugsAnything(owner) || pmcCanAttach(owner, target);
}

/** Root and CAP_SYS_PTRACE may debug any process, whatever its credentials become. */
export function debugsAnything(owner: Credentials): boolean {
  return owner.euid === 0 || hasCapability(owner, CAP_SYS_PTRACE);
}
