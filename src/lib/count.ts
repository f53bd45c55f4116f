// Conveniences over libpmc: count a function call, or a command.
import { launchHeld } from './launch.js';
import { Libpmc } from './libpmc.js';

export interface EventCount {
  event: string;
  value: bigint;
}

/**
 * Counts `fn` with process-mode PMCs on this process (every thread of it,
 * as an hwpmc process PMC does). The PMCs are released afterwards.
 */
export async function countFunction<T>(specs: string[], fn: () => T | Promise<T>, pmc?: Libpmc): Promise<{ result: T; counts: EventCount[] }> {
  const lib = pmc ?? (await Libpmc.init());
  const ids = [];
  try {
    for (const s of specs) ids.push(await lib.allocate(s, 'TC'));
    for (const id of ids) await lib.start(id);
    const result = await fn();
    for (const id of ids) await lib.stop(id);
    const counts = [];
    for (const [i, id] of ids.entries()) counts.push({ event: specs[i], value: await lib.read(id) });
    return { result, counts };
  } finally {
    for (const id of ids) await lib.release(id).catch(() => undefined);
    if (!pmc) await lib.close();
  }
}

export interface CommandCount {
  counts: EventCount[];
  exitStatus: number;
  elapsedNs: bigint;
}

/** Runs `argv` with process-mode PMCs attached from its first instruction, with its descendants if asked. */
export async function countCommand(
  specs: string[],
  argv: string[],
  options: { descendants?: boolean; stdio?: 'inherit' | 'ignore' | 'pipe'; pmc?: Libpmc } = {},
): Promise<CommandCount> {
  const lib = options.pmc ?? (await Libpmc.init());
  const ids = [];
  try {
    for (const s of specs) ids.push(await lib.allocate(s, 'TC', { descendants: options.descendants }));
    const cmd = await launchHeld(argv, options.stdio ?? 'inherit');
    try {
      for (const id of ids) await lib.attach(id, cmd.pid);
      for (const id of ids) await lib.start(id);
    } catch (e) {
      cmd.child.kill('SIGKILL');
      await cmd.exited;
      throw e;
    }
    const t0 = process.hrtime.bigint();
    cmd.resume();
    const exitStatus = await cmd.exited;
    const elapsedNs = process.hrtime.bigint() - t0;
    const counts = [];
    for (const [i, id] of ids.entries()) counts.push({ event: specs[i], value: await lib.read(id) });
    return { counts, exitStatus, elapsedNs };
  } finally {
    for (const id of ids) await lib.release(id).catch(() => undefined);
    if (!options.pmc) await lib.close();
  }
}
