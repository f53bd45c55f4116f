// hwpmc's owner is a process: its PMCs go when it exits. A pmcd owner is a
// connection, which usually closes when its process dies; but a process that
// forked (or passed its socket on) leaves the connection open in another one.
// So each session's peer is also held by a pidfd, and one timer looks at all
// of them (a poll that does not wait) while there are any: a dead peer's
// connection is closed, which releases its PMCs, within PEER_LOOK_MS.
import { closeFd, pidfdOpen, readableNow } from '../os/libc.js';

/** How often the peers' pidfds are looked at (owners go within this, well under hwpmc's "at once" plus 1 s). */
const PEER_LOOK_MS = 250;

export class PeerWatch {
  private readonly peers = new Map<number, () => void>();
  private timer?: NodeJS.Timeout;

  /** Calls `onExit` once when process `pid` exits; returns what stops watching. No-op for a pid pmcd cannot see. */
  watch(pid: number, onExit: () => void): () => void {
    const fd = pid > 0 ? pidfdOpen(pid) : -1;
    if (fd < 0) return () => undefined;
    this.peers.set(fd, onExit);
    this.timer ??= setInterval(() => this.look(), PEER_LOOK_MS).unref();
    return () => this.forget(fd);
  }

  private forget(fd: number): void {
    if (!this.peers.delete(fd)) return;
    closeFd(fd);
    if (this.peers.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private look(): void {
    const fds = [...this.peers.keys()];
    const ready = readableNow(fds);
    if (typeof ready === 'number') return;
    fds.forEach((fd, i) => {
      if (!ready[i]) return;
      const onExit = this.peers.get(fd)!;
      this.forget(fd);
      onExit();
    });
  }
}
