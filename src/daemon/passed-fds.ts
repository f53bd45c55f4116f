// Descriptors clients passed (PASSFD), kept until the request that names
// them (CONFIGURELOG with the token) claims them. Only a connection of the
// same process and user may claim one; unclaimed ones are closed after a
// while, and each user may keep only a few waiting, so passing descriptors
// cannot fill pmcd's descriptor table.
import { randomInt } from 'node:crypto';
import { closeFd } from '../os/libc.js';
import { PmcError } from '../pmc-error.js';

interface Passed {
  fd: number;
  pid: number;
  uid: number;
  timer: NodeJS.Timeout;
}

export class PassedFds {
  private readonly byToken = new Map<number, Passed>();

  constructor(
    private readonly perUser = 8,
    private readonly ttlMs = 10_000,
  ) {}

  /** Keeps `fd` (now pmcd's) for the process that sent it; returns its token. */
  add(fd: number, pid: number, uid: number): number {
    let waiting = 0;
    for (const p of this.byToken.values()) if (p.uid === uid) waiting++;
    if (waiting >= this.perUser) {
      closeFd(fd);
      throw new PmcError('EMFILE', `user ${uid} already has ${waiting} passed descriptors waiting to be claimed`);
    }
    let token: number;
    do token = randomInt(1, 0x7fffffff);
    while (this.byToken.has(token));
    const timer = setTimeout(() => this.drop(token), this.ttlMs);
    timer.unref();
    this.byToken.set(token, { fd, pid, uid, timer });
    return token;
  }

  /** The descriptor behind `token`, handed over (the caller owns it from now on). */
  claim(token: number, pid: number, uid: number): number {
    const p = this.byToken.get(token);
    if (!p || p.pid !== pid || p.uid !== uid) throw new PmcError('EBADF', `no descriptor was passed under token ${token} by this process`);
    clearTimeout(p.timer);
    this.byToken.delete(token);
    return p.fd;
  }

  /** Closes every descriptor still waiting. */
  clear(): void {
    for (const token of [...this.byToken.keys()]) this.drop(token);
  }

  private drop(token: number): void {
    const p = this.byToken.get(token);
    if (!p) return;
    clearTimeout(p.timer);
    this.byToken.delete(token);
    closeFd(p.fd);
  }
}
