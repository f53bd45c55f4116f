// The module through pmcd: the same call(op, args) as the local client, sent
// over pmcd's Unix socket (docs/protocol.md). Arguments and results cross as
// OP_TABLE says; a descriptor argument (CONFIGURELOG's) is passed first on a
// connection of its own (PASSFD, SCM_RIGHTS) and named by the token pmcd
// returns. Notices (hwpmc's SIGIO) arrive on the connection.
import { connect, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder, FrameKind } from '../ipc/frame.js';
import { sendWithFd, socketFd } from '../ipc/unix.js';
import { decodeResult, fdArgument, type OpArgs, type OpResult } from '../module/op-table.js';
import type { OwnerSignal } from '../module/owner.js';
import type { PmcOp } from '../module/pmc-types.js';
import { PmcError } from '../pmc-error.js';
import type { ModuleClient } from './module-client.js';

/** Replies may be large (every tracepoint of the machine); requests are small. */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;

interface Pending {
  resolve: (payload: Record<string, unknown>) => void;
  reject: (e: PmcError) => void;
}

export class PmcdClient implements ModuleClient {
  readonly ownerPid = process.pid;
  private readonly decoder = new FrameDecoder(MAX_REPLY_BYTES);
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(s: OwnerSignal) => void>();
  private seq = 0;
  private gone?: PmcError;
  private closing = false;
  private readonly closed: Promise<void>;

  private constructor(
    readonly socketPath: string,
    private readonly socket: Socket,
  ) {
    socket.on('data', (b: Buffer) => this.receive(b));
    socket.on('error', (e) => this.fail(new PmcError('EPIPE', `pmcd connection (${socketPath}): ${e.message}`)));
    this.closed = new Promise((r) => socket.once('close', () => r()));
    void this.closed.then(() => {
      const e = new PmcError('EPIPE', `pmcd closed the connection (${socketPath}): every PMC of this owner is released`);
      this.fail(e);
      // pmcd stopped (or dropped this owner): as hwpmc's unload, a SIGBUS to the owner, unless it closed first.
      if (!this.closing) for (const l of this.listeners) l({ signal: 'SIGBUS', reason: e.message });
    });
  }

  /** Connects to pmcd; ENOENT or ECONNREFUSED (as a PmcError) when no pmcd listens there. */
  static async connect(socketPath: string): Promise<PmcdClient> {
    return new PmcdClient(socketPath, await connected(socketPath));
  }

  async call<K extends PmcOp>(op: K, args: OpArgs<K>): Promise<OpResult<K>> {
    // pmcd checks the arguments against the op's schema; a descriptor goes ahead on its own connection.
    const fdName = fdArgument(op);
    const fd = fdName === undefined ? undefined : (args as Record<string, number>)[fdName];
    const wire = fd !== undefined && fd >= 0 ? { ...args, [fdName!]: await passDescriptor(this.socketPath, fd) } : args;
    const reply = await this.request(FrameKind.REQUEST, { op, args: wire });
    return decodeResult(op, reply.result);
  }

  /** An empty request-reply: pmcd answers without the module (the transport's cost). */
  async ping(): Promise<void> {
    await this.request(FrameKind.PING, {});
  }

  onSignal(listener: (s: OwnerSignal) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The owner goes away: pmcd releases everything when the connection closes. */
  async close(): Promise<void> {
    this.closing = true;
    this.socket.end();
    await this.closed;
  }

  private request(kind: FrameKind, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.gone) return Promise.reject(this.gone);
    const seq = (this.seq = (this.seq + 1) >>> 0);
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.socket.write(encodeFrame(kind, { seq, ...body }));
    });
  }

  private receive(bytes: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(bytes);
    } catch (e) {
      this.fail(e as PmcError);
      this.socket.destroy();
      return;
    }
    for (const f of frames) {
      const p = f.payload as Record<string, unknown>;
      if (f.kind === FrameKind.NOTICE) {
        const signal = ownerSignal(p);
        if (signal === undefined) {
          this.fail(new PmcError('EPROTO', `pmcd (${this.socketPath}) sent a notice that is not one: ${JSON.stringify(p).slice(0, 200)}`));
          this.socket.destroy();
          return;
        }
        for (const l of this.listeners) l(signal);
        continue;
      }
      const waiter = this.pending.get(p?.seq as number);
      if (!waiter) {
        // seq 0: pmcd could not read a request of ours and is closing the connection.
        if (p?.error) this.fail(replyError(p.error));
        continue;
      }
      this.pending.delete(p.seq as number);
      if (p.error) waiter.reject(replyError(p.error));
      else waiter.resolve(p);
    }
  }

  private fail(e: PmcError): void {
    this.gone ??= e;
    for (const w of this.pending.values()) w.reject(e);
    this.pending.clear();
  }
}

/** A NOTICE's payload as what the module tells an owner, or undefined when it is not that. */
function ownerSignal(p: Record<string, unknown> | null): OwnerSignal | undefined {
  if (p?.signal !== 'SIGIO' || typeof p.reason !== 'string') return undefined;
  if (p.pmcId !== undefined && !Number.isInteger(p.pmcId)) return undefined;
  return { signal: 'SIGIO', reason: p.reason, pmcId: p.pmcId as number | undefined };
}

function replyError(e: unknown): PmcError {
  const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
  return new PmcError(typeof code === 'string' ? code : 'EIO', typeof message === 'string' ? message : 'pmcd reported an error');
}

function connected(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => reject(new PmcError(e.code ?? 'EIO', `cannot connect to pmcd at ${path}: ${e.message}`)));
  });
}

/** PASSFD: a connection of its own whose first message carries `fd`; pmcd answers with a token. */
async function passDescriptor(path: string, fd: number): Promise<number> {
  const s = await connected(path);
  try {
    sendWithFd(socketFd(s), encodeFrame(FrameKind.PASSFD, {}), fd);
    const decoder = new FrameDecoder(4096);
    const payload = await new Promise<Record<string, unknown>>((resolve, reject) => {
      s.on('data', (b: Buffer) => {
        try {
          const [f] = decoder.push(b);
          if (f) resolve(f.payload as Record<string, unknown>);
        } catch (e) {
          reject(e);
        }
      });
      s.once('close', () => reject(new PmcError('EPIPE', 'pmcd closed the descriptor connection without an answer')));
      s.once('error', (e) => reject(new PmcError('EPIPE', `passing a descriptor to pmcd: ${e.message}`)));
    });
    if (payload.error) throw replyError(payload.error);
    return (payload.result as { token: number }).token;
  } finally {
    s.destroy();
  }
}

