// The libc calls that are neither perf's (md/native.ts) nor sockets'
// (ipc/unix.ts): pidfds, close, poll(2), now or on a libuv thread so the
// event loop runs on while it waits, and an eventfd to wake such a poll. Failures come back as negative errno
// values, named by the caller (errnoName in pmc-error.ts).
import { koffi } from '../ffi.js';

const libc = koffi.load('libc.so.6');

/** x86_64 system call number of pidfd_open. */
const SYS_pidfd_open = 434;

const syscallPidfdOpen = libc.func('long syscall(long nr, int pid, unsigned int flags)');
const pollFn = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const closeFn = libc.func('int close(int fd)');
const eventfdFn = libc.func('int eventfd(unsigned int initval, int flags)');
const writeFn = libc.func('long write(int fd, const void *buf, unsigned long count)');
const readFn = libc.func('long read(int fd, void *buf, unsigned long count)');

/** Negative errno of the last failed call, read right after it. */
function fail(): number {
  return -koffi.errno();
}

export function closeFd(fd: number): number {
  const r = closeFn(fd) as number;
  return r < 0 ? fail() : r;
}

/** ENOSYS: what pidfd_open returns on kernels before 5.3. */
const ENOSYS = 38;

/**
 * pidfd_open(2): an fd that names one process (never a later one with its
 * pid); returns the fd or -errno. TSPMC_NO_PIDFD=1 (a test and debug knob)
 * makes it fail with ENOSYS, as on a kernel without pidfds, so that the
 * paths for those kernels run here.
 */
export function pidfdOpen(pid: number): number {
  if (process.env.TSPMC_NO_PIDFD === '1') return -ENOSYS;
  const r = Number(syscallPidfdOpen(SYS_pidfd_open, pid, 0));
  return r < 0 ? fail() : r;
}

// struct pollfd { int fd; short events; short revents; }: events asked, and what came back.
const POLLIN = 1;
const EINTR = 4;
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
  let r: number;
  // A signal (a profiler's SIGPROF, a SIGCHLD) is no answer: ask again.
  while ((r = pollFn(buf, fds.length, 0) as number) < 0 && koffi.errno() === EINTR);
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
      if (err) {
        resolve(-5); // EIO: koffi could not make the call
        return;
      }
      // A signal ended the wait early (the errno of the libuv thread that polled is lost): a wait with nothing ready.
      if (r < 0) r = 0;
      resolve(fds.map((_, i) => {
        const ev = buf.readInt16LE(8 * i + 6);
        return ev & (POLLHUP | POLLERR) ? 'hup' : ev & POLLIN ? 'ready' : 'idle';
      }));
    });
  });
}

const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
/** The 64-bit 1 an eventfd write adds, and room for what a read takes. */
const EVENT_ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
const eventTaken = Buffer.alloc(8);

/** eventfd(2), non-blocking: a descriptor through which a poll can be woken. Returns the fd or -errno. */
export function eventFd(): number {
  const r = eventfdFn(0, EFD_NONBLOCK | EFD_CLOEXEC) as number;
  return r < 0 ? fail() : r;
}

/** Makes an eventfd readable: wakes whoever polls it. */
export function signalEventFd(fd: number): void {
  writeFn(fd, EVENT_ONE, 8);
}

/** Makes an eventfd unreadable again. */
export function drainEventFd(fd: number): void {
  readFn(fd, eventTaken, 8);
}

const prctlFn = libc.func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)');
const PR_SET_PDEATHSIG = 1;

/** prctl(PR_SET_PDEATHSIG): the kernel sends `signal` to this process when its parent dies; 0 or -errno. */
export function dieWithParent(signal: number): number {
  const r = prctlFn(PR_SET_PDEATHSIG, signal, 0, 0, 0) as number;
  return r < 0 ? fail() : r;
}
