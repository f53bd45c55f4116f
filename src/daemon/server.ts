// pmcd's socket: the module's one entry point for every process of the
// machine, as hwpmc's syscall is. Each connection is identified by the
// kernel (SO_PEERCRED) and becomes an owner (a Session), unless its first
// message passes a descriptor (PASSFD), which is kept for the request that
// names it. The socket is world-writable: the module's policy, not the
// socket's mode, says who may do what.
import { chmodSync, existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { encodeFrame, FRAME_HEADER, FrameDecoder, FrameKind, PROTOCOL_VERSION } from '../ipc/frame.js';
import { type ReceivedMessage, socketFd } from '../ipc/unix.js';
import { closeFd } from '../os/libc.js';
import { LOG_STALL_MS } from '../module/log-ops.js';
import type { PmcModule } from '../module/pmc-module.js';
import { PmcError } from '../pmc-error.js';
import { FirstMessageReader } from './first-message.js';
import { PassedFds } from './passed-fds.js';
import { PeerWatch } from './peer-watch.js';
import { describePeer, identifyPeer } from './peer.js';
import { MAX_REQUEST_BYTES, Session } from './session.js';

export const DEFAULT_SOCKET = '/run/tspmc/pmcd.sock';
/**
 * SIGTERM ends pmcd within this long, whatever still waits: the module gives
 * up each log whose reader takes nothing after LOG_STALL_MS; the rest is margin
 * (systemd's TimeoutStopSec in systemd/pmcd.service is longer).
 */
export const PMCD_STOP_BOUND_MS = 2 * LOG_STALL_MS;
/** A connection that says nothing for this long is closed. */
const FIRST_MESSAGE_MS = 10_000;
/** Refused connections whose first request pmcd reads (up to this long) before it says why, at most. */
const MAX_REFUSING = 16;
const REFUSED_READ_MS = 1000;
/** Refused connections are logged one line per this long at most (a flood must not flood the journal). */
const REFUSAL_LOG_MS = 10_000;

/** pmcd's RLIMIT_NOFILE (soft; Node raises it to the hard limit at start), from /proc/self/limits. */
function descriptorLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

export interface PmcdServerOptions {
  socketPath: string;
  module: PmcModule;
  /** Where pmcd's log lines go (default: stderr, which systemd's journal keeps). */
  log?: (line: string) => void;
}

export class PmcdServer {
  readonly module: PmcModule;
  readonly passed = new PassedFds();
  readonly peers = new PeerWatch();
  readonly sessions = new Set<Session>();
  readonly socketPath: string;
  readonly log: (line: string) => void;
  private readonly first = new FirstMessageReader(MAX_REQUEST_BYTES + FRAME_HEADER);
  private readonly server: Server;
  private nextSession = 1;
  private stopping?: Promise<void>;
  /**
   * Connections (owners, and new ones not yet read) take at most half of pmcd's descriptors (two
   * each: the socket and a pidfd of the peer): the other half is for the owners' PMCs, targets and
   * logs, so that a flood of connections (idle ones included) leaves the owners working. One user
   * other than root gets an eighth of that.
   */
  readonly maxConnections = Math.max(8, Math.floor(descriptorLimit() / 4));
  readonly maxConnectionsPerUser = Math.max(4, Math.floor(this.maxConnections / 8));
  private connections = 0;
  /** Refused connections whose first request is being read, oldest first, with their descriptors. */
  private readonly refusing = new Map<Socket, number>();
  private readonly connectionsByUid = new Map<number, number>();
  private readonly refused: { count: number; last: string; timer?: NodeJS.Timeout } = { count: 0, last: '' };

  private constructor(options: PmcdServerOptions) {
    this.module = options.module;
    this.socketPath = options.socketPath;
    this.log = options.log ?? ((line) => process.stderr.write(`pmcd: ${line}\n`));
    this.server = createServer({ pauseOnConnect: true }, (socket) => {
      // A connection that fails before it is an owner (gone before SO_PEERCRED, say) costs only itself.
      this.connections++;
      socket.once('close', () => this.connections--);
      this.accept(socket).catch((e: unknown) => {
        this.refuse(socket, e instanceof PmcError ? e : new PmcError('EIO', String((e as Error)?.message ?? e)));
      });
    });
  }

  /** Listens on `socketPath` (mode 0666); a stale socket is replaced, a live pmcd is an error. */
  static async start(options: PmcdServerOptions): Promise<PmcdServer> {
    const s = new PmcdServer(options);
    mkdirSync(dirname(s.socketPath), { recursive: true, mode: 0o755 });
    if (existsSync(s.socketPath)) {
      if (await answers(s.socketPath)) throw new PmcError('EADDRINUSE', `a pmcd already listens on ${s.socketPath}`);
      unlinkSync(s.socketPath);
    }
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(s.socketPath, () => resolve());
    });
    chmodSync(s.socketPath, 0o666);
    return s;
  }

  private async accept(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    let fd: number;
    try {
      fd = socketFd(socket);
    } catch {
      socket.destroy();
      return;
    }
    if (this.connections > this.maxConnections) {
      throw new PmcError('EMFILE', `pmcd has ${this.maxConnections} connections, the most its descriptor limit allows: try again later`);
    }
    const caller = identifyPeer(fd, this.nextSession++);
    const uid = caller.creds.euid;
    const mine = (this.connectionsByUid.get(uid) ?? 0) + 1;
    if (uid !== 0 && mine > this.maxConnectionsPerUser) {
      const err = new PmcError('EMFILE', `user ${uid} has ${mine - 1} connections to pmcd, the most one user may have: try again later`);
      return this.refuse(socket, err, describePeer(caller));
    }
    this.connectionsByUid.set(uid, mine);
    socket.once('close', () => {
      const n = this.connectionsByUid.get(uid)! - 1;
      if (n > 0) this.connectionsByUid.set(uid, n);
      else this.connectionsByUid.delete(uid);
    });
    const m = await this.first.read(fd, FIRST_MESSAGE_MS);
    if (this.stopping || socket.destroyed || !m || m.data.length === 0) {
      for (const f of m?.fds ?? []) closeFd(f);
      socket.destroy();
      return;
    }
    if (m.data.length >= FRAME_HEADER && m.data[4] === PROTOCOL_VERSION && m.data[5] === FrameKind.PASSFD) {
      this.takeDescriptor(socket, caller, m);
      return;
    }
    // Descriptors only ever come with PASSFD: any others are closed at once.
    for (const f of m.fds) closeFd(f);
    const session = new Session(this, caller, socket);
    this.sessions.add(session);
    void session.ended.then(() => this.sessions.delete(session));
    session.receive(m.data);
    socket.resume();
  }

  /**
   * A connection pmcd cannot take (too many, or out of descriptors) gets an error reply
   * and is closed; refusals are logged, at most one line per REFUSAL_LOG_MS.
   */
  private refuse(socket: Socket, err: PmcError, peer?: string): void {
    const reply = (): void => void socket.end(encodeFrame(FrameKind.REPLY, { seq: 0, error: { code: err.code, message: err.detail } }), () => socket.destroy());
    // The client's first request is read before the reply: closing a connection with a request unread
    // resets it, and the client would see ECONNRESET or EPIPE instead of why. A few are held so at a
    // time; when more come, the one held longest (a client that sends nothing) is answered first.
    let fd = -1;
    try {
      fd = socketFd(socket);
    } catch {
      // no descriptor to read: reply at once
    }
    if (fd < 0) reply();
    else {
      if (this.refusing.size >= MAX_REFUSING) this.first.cancel(this.refusing.values().next().value!);
      this.refusing.set(socket, fd);
      void this.first.read(fd, REFUSED_READ_MS).then((m) => {
        for (const f of m?.fds ?? []) closeFd(f);
        this.refusing.delete(socket);
        reply();
      });
    }
    const r = this.refused;
    r.count++;
    r.last = `${peer ? `${peer}: ` : ''}${err.message}`;
    if (!r.timer) this.logRefusals();
  }

  private logRefusals(): void {
    const r = this.refused;
    r.timer = undefined;
    if (r.count === 0) return;
    this.log(`refused ${r.count === 1 ? 'a connection' : `${r.count} connections in ${REFUSAL_LOG_MS / 1000} s, the last`}: ${r.last}`);
    r.count = 0;
    r.timer = setTimeout(() => this.logRefusals(), REFUSAL_LOG_MS).unref();
  }

  /** A PASSFD connection: one frame, one descriptor; the reply is its token. */
  private takeDescriptor(socket: Socket, caller: ReturnType<typeof identifyPeer>, m: ReceivedMessage): void {
    // pmcd never reads this connection again: once the reply is out it is closed.
    const reply = (payload: unknown): void => {
      socket.end(encodeFrame(FrameKind.REPLY, payload), () => socket.destroy());
    };
    try {
      const frames = new FrameDecoder(256).push(m.data);
      if (frames.length !== 1 || m.fds.length !== 1 || m.truncated) {
        throw new PmcError('EINVAL', `PASSFD is one frame with one descriptor (got ${frames.length} frames, ${m.fds.length}${m.truncated ? '+' : ''} descriptors)`);
      }
      const token = this.passed.add(m.fds[0], caller.pid, caller.creds.euid);
      reply({ seq: 0, result: { token } });
    } catch (e) {
      for (const f of m.fds) closeFd(f);
      const err = e instanceof PmcError ? e : new PmcError('EPROTO', String(e));
      this.log(`refused a descriptor from ${describePeer(caller)}: ${err.message}`);
      reply({ seq: 0, error: { code: err.code, message: err.detail } });
    }
  }

  /**
   * pmcd stops (SIGTERM): no new connections, every owner released and its
   * log closed with CLOSELOG (or given up when its reader takes nothing),
   * then the socket is removed. The module's shutdown bounds the wait.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.server.close();
      const sessions = [...this.sessions].map((s) => s.close());
      await this.module.shutdown().catch((e: unknown) => this.log(`shutdown: ${(e as Error)?.message ?? e}`));
      await Promise.all(sessions);
      this.passed.clear();
      try {
        unlinkSync(this.socketPath);
      } catch {
        // already gone
      }
    })();
    return this.stopping;
  }
}

/** Whether something accepts connections on a Unix socket path. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
