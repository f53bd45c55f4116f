// One client connection: an owner of the module (hwpmc's pmc_owner), its
// requests answered in order, its notices (hwpmc's SIGIO) sent as they come.
// A request is checked against the op's schema before the module sees it;
// a malformed request gets an error reply, a malformed stream (bad header,
// oversized or unknown frame) a closed connection. When the connection
// closes, for whatever reason (the client's exit, its death, a protocol
// error), everything the owner had is released.
import type { Socket } from 'node:net';
import { encodeFrame, type Frame, FrameDecoder, FrameKind } from '../ipc/frame.js';
import type { Caller } from '../module/caller.js';
import { decodeArgs, fdArgument } from '../module/op-table.js';
import type { PmcModule } from '../module/pmc-module.js';
import { PmcOp } from '../module/pmc-types.js';
import { isPmcError, PmcError } from '../pmc-error.js';
import type { PassedFds } from './passed-fds.js';
import type { PeerWatch } from './peer-watch.js';
import { describePeer } from './peer.js';

/** Largest request pmcd accepts (an event specifier is the longest argument). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Requests a client may have waiting before pmcd stops reading its socket. */
const MAX_QUEUED = 32;
/** Replies a client has not read yet, in bytes, before pmcd stops answering it until it does. */
const MAX_UNREAD_REPLIES = 1024 * 1024;

export interface SessionHost {
  readonly module: PmcModule;
  readonly passed: PassedFds;
  readonly peers: PeerWatch;
  log(line: string): void;
}

interface Request {
  seq: number;
  op: number;
  args: unknown;
}

export class Session {
  private readonly decoder = new FrameDecoder(MAX_REQUEST_BYTES);
  private readonly queue: Frame[] = [];
  private busy = false;
  private closed = false;
  /** Settles when the owner is released and its log closed. */
  readonly ended: Promise<void>;
  private end!: () => void;
  private readonly unwatch: () => void;

  constructor(
    private readonly host: SessionHost,
    readonly caller: Caller,
    private readonly socket: Socket,
  ) {
    this.ended = new Promise((r) => (this.end = r));
    host.module.onSignal(caller, (s) => this.send(FrameKind.NOTICE, s));
    socket.on('data', (b: Buffer) => this.receive(b));
    socket.on('error', () => undefined);
    socket.on('close', () => this.release());
    // The owner is the peer process: if it dies while its connection lives on elsewhere, the owner goes.
    this.unwatch = host.peers.watch(caller.pid, () => {
      host.log(`${describePeer(caller)} exited; its connection, open in another process, is closed`);
      socket.destroy();
    });
  }

  /** Bytes from the client (the first ones may come from pmcd's own first read). */
  receive(bytes: Buffer): void {
    if (this.closed) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(bytes);
    } catch (e) {
      this.protocolError(e);
      return;
    }
    this.queue.push(...frames);
    if (this.queue.length > MAX_QUEUED) this.socket.pause();
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        // A client that does not read its replies waits for them, not pmcd's memory.
        if (this.socket.writableLength > MAX_UNREAD_REPLIES) await this.readerCaughtUp();
        if (this.closed) break;
        await this.handle(this.queue.shift()!);
        if (this.queue.length <= MAX_QUEUED / 2 && this.socket.isPaused()) this.socket.resume();
      }
    } finally {
      this.busy = false;
    }
  }

  private readerCaughtUp(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done).off('close', done);
        resolve();
      };
      this.socket.on('drain', done).on('close', done);
    });
  }

  private async handle(frame: Frame): Promise<void> {
    const p = frame.payload;
    const seq = typeof p === 'object' && p !== null && Number.isInteger((p as Request).seq) ? (p as Request).seq : 0;
    if (p instanceof PmcError) return this.replyError(seq, undefined, p);
    if (frame.kind === FrameKind.PING) return this.send(FrameKind.REPLY, { seq });
    if (frame.kind !== FrameKind.REQUEST) return this.replyError(seq, undefined, new PmcError('EINVAL', `a ${FrameKind[frame.kind]} frame is not a request`));
    const req = p as Request;
    if (typeof req !== 'object' || req === null || !Number.isInteger(req.seq) || req.seq < 0 || req.seq > 0xffffffff) {
      return this.replyError(0, undefined, new PmcError('EINVAL', 'a request is { seq: u32, op, args }'));
    }
    if (typeof req.op !== 'number' || !(req.op in PmcOp)) return this.replyError(seq, undefined, new PmcError('EINVAL', `no module op ${JSON.stringify(req.op)}`));
    const op = req.op as PmcOp;
    try {
      const args = decodeArgs(op, req.args ?? {});
      // The descriptor argument carries a PASSFD token; the module gets (and owns) the descriptor.
      const fdName = fdArgument(op);
      const fields = args as Record<string, number>;
      if (fdName && fields[fdName] >= 0) fields[fdName] = this.host.passed.claim(fields[fdName], this.caller.pid, this.caller.creds.euid);
      const result = await this.host.module.call(this.caller, op, args);
      this.send(FrameKind.REPLY, { seq, result });
    } catch (e) {
      this.replyError(seq, op, e);
    }
  }

  private replyError(seq: number, op: PmcOp | undefined, e: unknown): void {
    const err = isPmcError(e) ? e : new PmcError('EIO', `pmcd: ${(e as Error)?.message ?? String(e)}`);
    if (!isPmcError(e)) this.host.log(`internal error in ${op === undefined ? 'a request' : PmcOp[op]} for ${describePeer(this.caller)}: ${(e as Error)?.stack ?? e}`);
    if (err.code === 'EPERM' || err.code === 'EACCES') this.host.log(`refused ${op === undefined ? 'a request' : PmcOp[op]} to ${describePeer(this.caller)}: ${err.message}`);
    this.send(FrameKind.REPLY, { seq, error: { code: err.code, message: err.detail } });
  }

  private protocolError(e: unknown): void {
    const err = isPmcError(e) ? e : new PmcError('EPROTO', String(e));
    this.host.log(`closing the connection of ${describePeer(this.caller)}: ${err.message}`);
    this.send(FrameKind.REPLY, { seq: 0, error: { code: err.code, message: err.detail } });
    this.socket.end();
    this.socket.destroySoon();
  }

  private send(kind: FrameKind, payload: unknown): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(encodeFrame(kind, payload));
  }

  /** The owner goes away: every PMC released at once, the log closed (CLOSELOG) when written out. */
  private release(): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch();
    this.queue.length = 0;
    this.host.module
      .ownerExited(this.caller)
      .catch((e: unknown) => this.host.log(`the log of ${describePeer(this.caller)} did not end well: ${(e as Error)?.message ?? e}`))
      .finally(this.end);
  }

  /** pmcd stops: release the owner, then close the connection. */
  async close(): Promise<void> {
    this.release();
    await this.ended;
    this.socket.destroy();
  }
}
