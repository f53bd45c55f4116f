// The libc calls that are neither perf's (md/native.ts) nor sockets'
// (ipc/unix.ts): pidfds, close, and poll(2), now or on a libuv thread so the
// event loop runs on while it waits. Failures come back as negative errno
// values, named by the caller (errnoName in pmc-error.ts).
import { koffi } from '../ffi.js';

const libc = koffi.load('libc.so.6');

/** x86_64 system call number of pidfd_open. */
const SYS_pidfd_open = 434;

const syscallPidfdOpen = libc.func('long syscall(long nr, int pid, unsigned int flags)');
const pollFn = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const closeFn = libc.func('int close(int fd)');

/** Negative errno of the last failed call, read right after it. */
function fail(): number {
  return -koffi.errno();
}

export function closeFd(fd: number): number {
  const r = closeFn(fd) as number;
  return r < 0 ? fail() : r;
}

/** pidfd_open(2): an fd that names one process (never a later one with its pid); returns the fd or -errno. */
export function pidfdOpen(pid: number): number {
  const r = Number(syscallPidfdOpen(SYS_pidfd_open, pid, 0));
  return r < 0 ? fail() : r;
}

// struct pollfd { int fd; short events; short revents; }: events asked, and what came back.
const POLLIN = 1;
const POLLERR = 0x8;
const POLLHUP = 0x10;

function pollfds(fds: readonly number[]): Buffer {
  const buf = Buffer.alloc(8 * fds.length);
  fds.forEach((fd, i) => {
    buf.writeInt32LE(fd, 8 * i);
    buf.writeInt16LE(POLLIN, 8 * i + 4);
  });
  return buf;
}

/**
 * poll(2) without waiting: which of `fds` are readable now (a pidfd is
 * readable once its process has exited). Returns one flag per fd, or -errno.
 */
export function readableNow(fds: readonly number[]): boolean[] | number {
  const buf = pollfds(fds);
  const r = pollFn(buf, fds.length, 0) as number;
  if (r < 0) return fail();
  return fds.map((_, i) => (buf.readInt16LE(8 * i + 6) & POLLIN) !== 0);
}

/**
 * poll(2) on a libuv thread, so the event loop runs on while it waits: until
 * one of `fds` is readable or `timeoutMs` has passed. Resolves with, per fd,
 * 'ready', 'hup' (the descriptor will never be readable again: POLLHUP or
 * POLLERR) or 'idle'; or with -errno.
 */
export function whenReadable(fds: readonly number[], timeoutMs: number): Promise<('ready' | 'hup' | 'idle')[] | number> {
  const buf = pollfds(fds);
  return new Promise((resolve) => {
    pollFn.async(buf, fds.length, timeoutMs, (err: unknown, r: number) => {
      if (err || r < 0) {
        resolve(-5); // EIO: koffi could not make the call
        return;
      }
      resolve(fds.map((_, i) => {
        const ev = buf.readInt16LE(8 * i + 6);
        return ev & (POLLHUP | POLLERR) ? 'hup' : ev & POLLIN ? 'ready' : 'idle';
      }));
    });
  });
}
