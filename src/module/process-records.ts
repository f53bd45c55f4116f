// hwpmc's process hooks as log records: what a process event from a sample
// source (exec, map, fork, thread, exit) becomes in an owner's log, and what
// the log then remembers. Several rings (one per CPU, per target) report the
// same event; each is logged once.
import { LogType, type LogRecord, type MapInRecord } from '../log/records.js';
import type { ProcessEvent } from '../md/sample-sink.js';
import type { OwnerLog } from './owner-log.js';
import type { Pmc } from './pmc.js';
import { PmcMode } from './pmc-types.js';

/**
 * The key under which a log remembers an event it took; undefined for the
 * events it does not remember that way (mappings: by pid, start and path;
 * exits seen by a process sampler, which logs none).
 */
function sightingKey(pmc: Pmc, e: ProcessEvent): string | undefined {
  switch (e.kind) {
    case 'exec':
      return `c:${e.pid}:${e.time}`;
    case 'fork':
      return `f:${e.pid}:${e.time}`;
    case 'thread':
      return `t:${e.pid}:${e.tid}:${e.time}`;
    case 'thread-exit':
      return `x:${e.pid}:${e.tid}:${e.time}`;
    case 'exit':
      return pmc.mode === PmcMode.SS ? `e:${e.pid}:${e.time}` : undefined;
    case 'map':
      return undefined;
  }
}

/** The records `e` makes in `log` now: none for one the log already took. */
export function processRecords(pmc: Pmc, log: OwnerLog, e: ProcessEvent): LogRecord[] {
  const key = sightingKey(pmc, e);
  if (key !== undefined && log.seen(key)) return [];
  const ts = e.time;
  switch (e.kind) {
    case 'exec':
      // PROCEXEC waits for the new executable's mapping.
      return [];
    case 'map': {
      const out: LogRecord[] = [];
      // The first image mapped after an exec is the new executable (the loader comes second).
      if (e.path.startsWith('/') && log.execPending.has(e.pid)) {
        out.push({ type: LogType.PROCEXEC, ts, pid: e.pid, pmcid: pmc.id, base: 0n, dyn: e.start, pathname: e.path });
      }
      const map: MapInRecord = { type: LogType.MAP_IN, ts, pid: e.pid, start: e.start, pathname: e.path, extent: { offset: e.offset, length: e.length } };
      if (!log.isMapped(map)) out.push(map);
      return out;
    }
    case 'fork':
      return [{ type: LogType.PROCFORK, ts, oldpid: e.ppid, newpid: e.pid }];
    case 'thread':
      return [{ type: LogType.THR_CREATE, ts, tid: e.tid, pid: e.pid, flags: 0, tdname: '' }];
    case 'thread-exit':
      return [{ type: LogType.THR_EXIT, ts, tid: e.tid }];
    case 'exit':
      // System samplers' owners hear of every exit; PROCEXIT, with a count, is for counting PMCs (the exit reaper).
      return pmc.mode === PmcMode.SS ? [{ type: LogType.SYSEXIT, ts, pid: e.pid }] : [];
  }
}

/** What `log` remembers of `e` once it took it (before its records are written). */
export function rememberEvent(pmc: Pmc, log: OwnerLog, e: ProcessEvent): void {
  const key = sightingKey(pmc, e);
  const first = key !== undefined && log.firstSighting(key);
  if (e.kind === 'exec' && first) {
    log.execPending.add(e.pid);
    log.forgetMappings(e.pid);
  } else if (e.kind === 'map' && e.path.startsWith('/')) {
    log.execPending.delete(e.pid);
  }
}
