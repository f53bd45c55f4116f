// Probing: can the kernel open this event here, for this process? Classes ask
// through an `Opener` so that unit tests can stand in a made-up kernel.
import type { PerfConfig } from './event-class.js';
import { errnoName } from '../pmc-error.js';
import { closeFd } from '../os/libc.js';
import { readSysctl } from '../os/procfs.js';
import { perfEventOpen } from './native.js';
import { encodeAttr } from './perf-attr.js';

const PERF_FLAG_FD_CLOEXEC = 1 << 3;
/** A sampling probe's period: big enough that the probe never takes a sample. */
export const PROBE_PERIOD = 1_000_000_000n;

export interface Probe {
  perf: PerfConfig;
  /** Set exclude_kernel/exclude_hv, so that unprivileged users (paranoid 2) may open it. */
  userOnly: boolean;
  sample?: bigint;
  pid?: number;
  cpu?: number;
}

/** Opens and closes the event; undefined on success, else the errno name. */
export type Opener = (p: Probe) => string | undefined;

export const tryOpen: Opener = (p) => {
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
};

function paranoidLevel(): string {
  return readSysctl('kernel.perf_event_paranoid') ?? 'unknown';
}

export function isPermissionErrno(errno: string): boolean {
  return errno === 'EACCES' || errno === 'EPERM';
}

/** What a refused permission needs, said once for every class. */
export function permissionNote(): string {
  return `perf_event_paranoid=${paranoidLevel()}; needs root or CAP_PERFMON`;
}

/** Why an open failed, in words; `what` names the event, `noDevice` explains ENOENT. */
export function openFailure(what: string, errno: string, noDevice?: string): string {
  const call = `perf_event_open(${what}) failed with ${errno}`;
  if (errno === 'ENOENT' && noDevice) return `${noDevice}: ${call}`;
  if (isPermissionErrno(errno)) return `${call} (${permissionNote()})`;
  return call;
}
