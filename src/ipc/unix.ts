// Unix IPC that Node does not offer, through the FFI: anonymous pipes, the
// peer credentials of a Unix socket (SO_PEERCRED), and file descriptors sent
// and received as SCM_RIGHTS. lib and pmcd use it; it knows nothing of PMCs.
// Layouts are x86-64 glibc's (unix(7), cmsg(3)).
import type { Socket } from 'node:net';
import { koffi } from '../ffi.js';
import { PmcError } from '../pmc-error.js';

const libc = koffi.load('libc.so.6');

const pipe2Fn = libc.func('int pipe2(_Out_ int *fds, int flags)');
const getsockoptFn = libc.func('int getsockopt(int fd, int level, int name, void *value, _Inout_ uint32_t *len)');
const sendmsgFn = libc.func('long sendmsg(int fd, void *msg, int flags)');
const recvmsgFn = libc.func('long recvmsg(int fd, void *msg, int flags)');

const O_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_CTRUNC = 0x8;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const EAGAIN = 11;
const EINTR = 4;

/** Most descriptors one message may carry; more are closed by the kernel (MSG_CTRUNC). */
const MAX_FDS = 4;
const CMSG_HEADER = 16;
const CONTROL_ROOM = CMSG_HEADER + 4 * MAX_FDS;
const MSGHDR = 56;
const IOVEC = 16;

function fail(what: string): never {
  throw PmcError.fromErrno(koffi.errno(), what);
}

/** pipe2(2) with O_CLOEXEC: [read end, write end]. */
export function pipe(): [number, number] {
  const fds = [0, 0];
  if ((pipe2Fn(fds, O_CLOEXEC) as number) < 0) fail('pipe2');
  return [fds[0], fds[1]];
}

/** The descriptor under a connected net.Socket (Node keeps it in its handle). */
export function socketFd(s: Socket): number {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new PmcError('EBADF', 'the socket has no file descriptor');
  return fd;
}

export interface PeerCredentials {
  /** In the receiver's PID namespace; 0 when the peer's process is not visible there. */
  pid: number;
  uid: number;
  gid: number;
}

/** SO_PEERCRED: who connected (the process that called connect(), as it was then). */
export function peerCredentials(fd: number): PeerCredentials {
  const buf = Buffer.alloc(12);
  const len = [12];
  if ((getsockoptFn(fd, SOL_SOCKET, SO_PEERCRED, buf, len) as number) < 0) fail('getsockopt(SO_PEERCRED)');
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}

/** Native memory for one message header, its iovec, data and control room (reused: calls are synchronous). */
class MessageBuffers {
  private readonly ptr: unknown;
  private readonly mem: Buffer;
  private readonly base: bigint;
  readonly dataRoom: number;

  constructor(dataRoom: number) {
    this.dataRoom = dataRoom;
    const size = MSGHDR + IOVEC + CONTROL_ROOM + dataRoom;
    this.ptr = koffi.alloc('uint8', size);
    this.mem = Buffer.from(koffi.view(this.ptr as never, size));
    this.base = koffi.address(this.ptr as never) as bigint;
  }

  get pointer(): unknown {
    return this.ptr;
  }
  get data(): Buffer {
    return this.mem.subarray(MSGHDR + IOVEC + CONTROL_ROOM);
  }
  get control(): Buffer {
    return this.mem.subarray(MSGHDR + IOVEC, MSGHDR + IOVEC + CONTROL_ROOM);
  }

  /** msghdr { name NULL, iov -> {data, dataLength}, control -> room of controlLength } */
  prepare(dataLength: number, controlLength: number): void {
    const m = this.mem;
    m.fill(0, 0, MSGHDR + IOVEC + CONTROL_ROOM);
    const iov = this.base + BigInt(MSGHDR);
    m.writeBigUInt64LE(iov, 16);
    m.writeBigUInt64LE(1n, 24);
    m.writeBigUInt64LE(controlLength > 0 ? iov + BigInt(IOVEC) : 0n, 32);
    m.writeBigUInt64LE(BigInt(controlLength), 40);
    m.writeBigUInt64LE(iov + BigInt(IOVEC + CONTROL_ROOM), MSGHDR);
    m.writeBigUInt64LE(BigInt(dataLength), MSGHDR + 8);
  }

  get flags(): number {
    return this.mem.readInt32LE(48);
  }
  get controlLength(): number {
    return Number(this.mem.readBigUInt64LE(40));
  }
}

let sendBuffers: MessageBuffers | undefined;

/**
 * sendmsg(2) of `data` with `fd` attached (SCM_RIGHTS). The socket must have
 * nothing else being written to it: the message goes around Node's queue.
 */
export function sendWithFd(socket: number, data: Uint8Array, fd: number): void {
  if (data.length === 0) throw new PmcError('EINVAL', 'a descriptor must ride on at least one byte');
  if (!sendBuffers || sendBuffers.dataRoom < data.length) sendBuffers = new MessageBuffers(Math.max(4096, data.length));
  const b = sendBuffers;
  b.data.set(data);
  b.prepare(data.length, CMSG_HEADER + 8);
  const c = b.control;
  c.writeBigUInt64LE(BigInt(CMSG_HEADER + 4), 0); // CMSG_LEN(sizeof(int))
  c.writeInt32LE(SOL_SOCKET, 8);
  c.writeInt32LE(SCM_RIGHTS, 12);
  c.writeInt32LE(fd, 16);
  for (;;) {
    const n = Number(sendmsgFn(socket, b.pointer, MSG_NOSIGNAL));
    if (n === data.length) return;
    if (n >= 0) throw new PmcError('EIO', `sendmsg sent ${n} of ${data.length} bytes`);
    if (koffi.errno() !== EINTR) fail('sendmsg');
  }
}

export interface ReceivedMessage {
  data: Buffer;
  /** Descriptors that came with it, close-on-exec; the caller owns (and must close) them. */
  fds: number[];
  /** More descriptors were sent than fit: the kernel closed the rest. */
  truncated: boolean;
}

let receiveBuffers: MessageBuffers | undefined;

/** recvmsg(2) without waiting: undefined when nothing is there yet; an empty message at end of stream. */
export function receiveWithFds(socket: number, maxBytes: number): ReceivedMessage | undefined {
  if (!receiveBuffers || receiveBuffers.dataRoom < maxBytes) receiveBuffers = new MessageBuffers(Math.max(4096, maxBytes));
  const b = receiveBuffers;
  b.prepare(maxBytes, CONTROL_ROOM);
  const n = Number(recvmsgFn(socket, b.pointer, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n < 0) {
    if (koffi.errno() === EAGAIN || koffi.errno() === EINTR) return undefined;
    fail('recvmsg');
  }
  const fds: number[] = [];
  const c = b.control;
  const clen = b.controlLength;
  for (let o = 0; o + CMSG_HEADER <= clen; ) {
    const len = Number(c.readBigUInt64LE(o));
    if (len < CMSG_HEADER) break;
    if (c.readInt32LE(o + 8) === SOL_SOCKET && c.readInt32LE(o + 12) === SCM_RIGHTS) {
      for (let p = o + CMSG_HEADER; p + 4 <= o + len; p += 4) fds.push(c.readInt32LE(p));
    }
    o += (len + 7) & ~7;
  }
  return { data: Buffer.from(b.data.subarray(0, n)), fds, truncated: (b.flags & MSG_CTRUNC) !== 0 };
}
