// hwpmc's owner is a process: its PMCs go when it exits. A pmcd owner is a
// connection, which usually closes when its process dies; but a process that
// forked (or passed its socket on) leaves the connection open in another one.
// So each session's peer is also held by a ProcessHandle (a pidfd, or on a
// kernel without pidfds its pid and start time), and one timer looks at all
// of them while there are any: a dead peer's connection is closed, which
// releases its PMCs, within PEER_LOOK_MS.
import { ProcessHandle } from '../os/process-handle.js';

/** How often the peers are looked at (owners go within this, well under hwpmc's "at once" plus 1 s). */
const PEER_LOOK_MS = 250;

export class PeerWatch {
  private readonly peers = new Map<ProcessHandle, () => void>();
  private timer?: NodeJS.Timeout;

  /** Calls `onExit` once when process `pid` exits; returns what stops watching. No-op for a pid pmcd cannot see. */
  watch(pid: number, onExit: () => void): () => void {
    if (pid <= 0) return () => undefined;
    let peer: ProcessHandle;
    try {
      peer = ProcessHandle.open(pid);
    } catch {
      return () => undefined;
    }
    this.peers.set(peer, onExit);
    this.timer ??= setInterval(() => this.look(), PEER_LOOK_MS).unref();
    return () => this.forget(peer);
  }

  private forget(peer: ProcessHandle): void {
    if (!this.peers.delete(peer)) return;
    peer.close();
    if (this.peers.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private look(): void {
    for (const [peer, onExit] of [...this.peers]) {
      let exited: boolean;
      try {
        exited = peer.hasExited();
      } catch {
        // Cannot tell now (EMFILE): looked at again next time.
        continue;
      }
      if (!exited) continue;
      this.forget(peer);
      onExit();
    }
  }
}
