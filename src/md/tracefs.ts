// Finding tracefs and reading tracepoint ids from <tracefs>/events/<subsystem>/<event>/id.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';

const TRACEFS = '/sys/kernel/tracing';
const DEBUGFS_TRACING = '/sys/kernel/debug/tracing';

export type TracefsLocation = { root: string } | { reason: string };

/** 'yes', 'no' (nothing there), or the errno that kept us from looking (EACCES: tracefs is root's by default). */
function populated(root: string): 'yes' | 'no' | string {
  try {
    accessSync(`${root}/events`, constants.R_OK | constants.X_OK);
    return 'yes';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'no' : code;
  }
}

/**
 * Where tracefs is. If neither usual place is populated and we are root,
 * mounts tracefs at /sys/kernel/tracing (as `mount -t tracefs` would).
 */
export function locateTracefs(): TracefsLocation {
  for (const root of [TRACEFS, DEBUGFS_TRACING]) {
    const state = populated(root);
    if (state === 'yes') return { root };
    if (state !== 'no') return { reason: `tracefs at ${root} is not readable by this user (${state}); tracepoints need root or a tracing group` };
  }
  if (!existsSync(TRACEFS)) return { reason: `${TRACEFS} does not exist (kernel without tracefs?)` };
  if (process.getuid?.() !== 0) {
    return { reason: `tracefs is not mounted at ${TRACEFS} and only root may mount it` };
  }
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? '').trim();
    return { reason: `tracefs is not mounted and mount -t tracefs nodev ${TRACEFS} failed: ${stderr || (e as Error).message}` };
  }
  return populated(TRACEFS) === 'yes' ? { root: TRACEFS } : { reason: `mounted tracefs at ${TRACEFS} but it has no events directory` };
}

/** A subsystem or event directory name: anything that cannot step out of events/. */
function isPlainName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/** The tracepoint's id (its perf config), or undefined if there is no such tracepoint. */
export function tracepointId(root: string, subsystem: string, event: string): number | undefined {
  if (!isPlainName(subsystem) || !isPlainName(event)) return undefined;
  let text: string;
  try {
    text = readFileSync(`${root}/events/${subsystem}/${event}/id`, 'latin1');
  } catch {
    return undefined;
  }
  const id = Number(text.trim());
  return Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}

function subdirectories(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** Subsystem names (events/* directories), unsorted. */
export function tracepointSubsystems(root: string): string[] {
  return subdirectories(`${root}/events`);
}

/** Event names of one subsystem, unsorted. */
export function tracepointEvents(root: string, subsystem: string): string[] {
  return isPlainName(subsystem) ? subdirectories(`${root}/events/${subsystem}`) : [];
}
