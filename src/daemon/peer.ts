// Who is on the other end of a pmcd connection, from the kernel only: the
// pid, uid and gid SO_PEERCRED recorded at connect(), the supplementary
// groups and capabilities from /proc (only if the process there is still the
// one that connected), and whether it lives in another PID namespace (the
// seed's jail rule). Nothing the client says about itself is believed.
import { readFileSync, readlinkSync } from 'node:fs';
import { peerCredentials } from '../ipc/unix.js';
import type { Credentials } from '../os/procfs.js';
import { readCredentials } from '../os/procfs.js';
import type { Caller } from '../module/caller.js';

/** Field 22 of /proc/PID/stat: when the process started, which a reused pid does not share. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function pidNamespace(pid: number | 'self'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** The caller behind a connected Unix socket, as the owner of session `session`. */
export function identifyPeer(fd: number, session: number): Caller {
  const cred = peerCredentials(fd);
  // A peer whose process pmcd cannot see (pid 0) is in a PID namespace outside ours.
  let creds: Credentials | undefined;
  let jailed = cred.pid === 0;
  if (cred.pid > 0) {
    const before = startTime(cred.pid);
    const status = readCredentials(cred.pid);
    const after = startTime(cred.pid);
    // The /proc entry speaks for the peer only if it is the same process and has the same effective ids.
    if (status && before !== undefined && before === after && status.euid === cred.uid && status.egid === cred.gid) creds = status;
    jailed ||= pidNamespace(cred.pid) !== pidNamespace('self');
  }
  creds ??= { euid: cred.uid, ruid: cred.uid, suid: cred.uid, egid: cred.gid, rgid: cred.gid, sgid: cred.gid, groups: [], capEff: 0n };
  return { pid: cred.pid, creds, jailed, session, passesFds: true };
}

/** "pid 1234 uid 1000 gid 1000" (and where it lives), for pmcd's log lines. */
export function describePeer(c: Caller): string {
  return `pid ${c.pid} uid ${c.creds.euid} gid ${c.creds.egid}${c.jailed ? ' (other PID namespace)' : ''} session ${c.session}`;
}
