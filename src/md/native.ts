// The only file that touches libc. Everything above it sees plain numbers,
// Buffers and ArrayBuffers; failures come back as negative errno values so
// callers decide how to name them (see errno.ts).
import { koffi } from '../ffi.js';

const libc = koffi.load('libc.so.6');

/** x86_64 system call numbers used here. */
const SYS_perf_event_open = 298;
const SYS_gettid = 186;
const SYS_pidfd_open = 434;

const syscallPerfEventOpen = libc.func('long syscall(long nr, void *attr, int pid, int cpu, int group_fd, unsigned long flags)');
const syscall0 = libc.func('long syscall(long nr)');
const syscallPidfdOpen = libc.func('long syscall(long nr, int pid, unsigned int flags)');
const pollFn = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const ioctlInt = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
// read(2) into memory outside the JS heap: a plain pointer argument costs
// koffi much less than marshalling a Buffer (about 200 ns less a call).
const readToAddress = libc.func('long read(int fd, uintptr_t buf, unsigned long count)');
const closeFn = libc.func('int close(int fd)');
const mmapFn = libc.func('void *mmap(void *addr, unsigned long length, int prot, int flags, int fd, long offset)');
const munmapFn = libc.func('int munmap(void *addr, unsigned long length)');

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;

/** Negative errno of the last failed call, read right after it. */
function fail(): number {
  return -koffi.errno();
}

/** perf_event_open(2); returns the fd or -errno. */
export function perfEventOpen(attr: Buffer, pid: number, cpu: number, groupFd: number, flags: number): number {
  const r = Number(syscallPerfEventOpen(SYS_perf_event_open, attr, pid, cpu, groupFd, flags));
  return r < 0 ? fail() : r;
}

export function ioctl(fd: number, request: number, arg: number): number {
  const r = ioctlInt(fd, request, arg) as number;
  return r < 0 ? fail() : r;
}

export function ioctlBuffer(fd: number, request: number, arg: Buffer): number {
  const r = ioctlPtr(fd, request, arg) as number;
  return r < 0 ? fail() : r;
}

/** Memory outside the JS heap, allocated once and never freed (a static buffer), seen as an ArrayBuffer. */
export interface NativeBuffer {
  readonly address: number;
  readonly buffer: ArrayBuffer;
}

export function allocNative(length: number): NativeBuffer {
  const mem = koffi.alloc('uint8_t', length);
  // A user-space address is below 2^47: exact as a JS number.
  return { address: Number(koffi.address(mem)), buffer: koffi.view(mem, length) };
}

/** read(2) of up to `length` bytes into `buf`; returns the bytes read or -errno. */
export function readNative(fd: number, buf: NativeBuffer, length: number): number {
  const r = Number(readToAddress(fd, buf.address, length));
  return r < 0 ? fail() : r;
}

export function closeFd(fd: number): number {
  const r = closeFn(fd) as number;
  return r < 0 ? fail() : r;
}

export function gettid(): number {
  return Number(syscall0(SYS_gettid));
}

/** pidfd_open(2): an fd that names one process (never a later one with its pid); returns the fd or -errno. */
export function pidfdOpen(pid: number): number {
  const r = Number(syscallPidfdOpen(SYS_pidfd_open, pid, 0));
  return r < 0 ? fail() : r;
}

const POLLIN = 1;

/**
 * poll(2) without waiting: which of `fds` are readable now (a pidfd is
 * readable once its process has exited). Returns one flag per fd, or -errno.
 */
export function readableNow(fds: readonly number[]): boolean[] | number {
  const buf = Buffer.alloc(8 * fds.length);
  // struct pollfd { int fd; short events; short revents; }
  fds.forEach((fd, i) => {
    buf.writeInt32LE(fd, 8 * i);
    buf.writeInt16LE(POLLIN, 8 * i + 4);
  });
  const r = pollFn(buf, fds.length, 0) as number;
  if (r < 0) return fail();
  return fds.map((_, i) => (buf.readInt16LE(8 * i + 6) & POLLIN) !== 0);
}

/** poll(2) events in a pollfd buffer's entry i: what came back. */
const POLLHUP = 0x10;
const POLLERR = 0x8;

/**
 * poll(2) on a libuv thread, so the event loop runs on while it waits: until
 * one of `fds` is readable or `timeoutMs` has passed. Resolves with, per fd,
 * 'ready', 'hup' (the descriptor will never be readable again: POLLHUP or
 * POLLERR) or 'idle'; or with -errno.
 */
export function whenReadable(fds: readonly number[], timeoutMs: number): Promise<('ready' | 'hup' | 'idle')[] | number> {
  const buf = Buffer.alloc(8 * fds.length);
  fds.forEach((fd, i) => {
    buf.writeInt32LE(fd, 8 * i);
    buf.writeInt16LE(POLLIN, 8 * i + 4);
  });
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

/** A shared mapping of an fd, seen from JS as an ArrayBuffer. */
export interface Mapping {
  readonly address: unknown;
  readonly length: number;
  readonly buffer: ArrayBuffer;
}

export function mmapShared(fd: number, length: number, prot: number): Mapping | number {
  const address = mmapFn(null, length, prot, MAP_SHARED, fd, 0);
  // MAP_FAILED is (void *)-1.
  if (address === null || koffi.address(address) === 0xffffffffffffffffn) return fail();
  return { address, length, buffer: koffi.view(address, length) };
}

export function munmap(mapping: Mapping): number {
  const r = munmapFn(mapping.address, mapping.length) as number;
  return r < 0 ? fail() : r;
}
