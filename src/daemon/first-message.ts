// The first message of every new connection is read here, with recvmsg(2),
// before Node's stream reads the socket: a descriptor sent with SCM_RIGHTS
// survives only a read that has room for control data, and the first
// message is the one that may carry one (PASSFD). One poll(2) for every
// waiting connection runs in the thread pool, so a client that connects and
// says nothing holds no thread of its own and stalls nobody.
import { receiveWithFds, type ReceivedMessage } from '../ipc/unix.js';
import { whenReadable } from '../os/libc.js';

interface Waiting {
  fd: number;
  deadline: number;
  done: (m: ReceivedMessage | undefined) => void;
}

/** How long one poll waits before looking again (new connections join at the next look). */
const POLL_MS = 10;

export class FirstMessageReader {
  private readonly waiting = new Set<Waiting>();
  private polling = false;

  constructor(private readonly maxBytes: number) {}

  /** The first bytes (and descriptors) `fd` receives; undefined if none come within `timeoutMs`. */
  read(fd: number, timeoutMs: number): Promise<ReceivedMessage | undefined> {
    return new Promise((done) => {
      const w = { fd, deadline: Date.now() + timeoutMs, done };
      if (this.tryRead(w)) return;
      this.waiting.add(w);
      if (!this.polling) void this.loop();
    });
  }

  /** Stops waiting for `fd` (its read gives undefined), before its owner closes it. */
  cancel(fd: number): void {
    for (const w of this.waiting) if (w.fd === fd) this.finish(w, undefined);
  }

  private tryRead(w: Waiting): boolean {
    let m: ReceivedMessage | undefined;
    try {
      m = receiveWithFds(w.fd, this.maxBytes);
    } catch {
      m = { data: Buffer.alloc(0), fds: [], truncated: false };
    }
    if (m === undefined) return false;
    w.done(m);
    return true;
  }

  private finish(w: Waiting, m: ReceivedMessage | undefined): void {
    this.waiting.delete(w);
    w.done(m);
  }

  private async loop(): Promise<void> {
    this.polling = true;
    try {
      while (this.waiting.size > 0) {
        await whenReadable([...this.waiting].map((w) => w.fd), POLL_MS);
        const now = Date.now();
        for (const w of [...this.waiting]) {
          if (this.tryRead(w)) this.waiting.delete(w);
          else if (now >= w.deadline) this.finish(w, undefined);
        }
      }
    } finally {
      this.polling = false;
    }
  }
}
