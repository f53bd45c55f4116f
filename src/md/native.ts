// md's libc: perf_event_open, its ioctls, reads into native memory, mmap
// (os/libc.ts binds what is not perf's). Everything above it sees plain
// numbers, Buffers and ArrayBuffers; failures come back as negative errno
// values so callers decide how to name them (errnoName in pmc-error.ts).
import { koffi } from '../ffi.js';

const libc = koffi.load('libc.so.6');

/** x86_64 system call numbers used here. */
const SYS_perf_event_open = 298;

const syscallPerfEventOpen = libc.func('long syscall(long nr, void *attr, int pid, int cpu, int group_fd, unsigned long flags)');
const ioctlInt = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
// read(2) into memory outside the JS heap: a plain pointer argument costs
// koffi much less than marshalling a Buffer (about 200 ns less a call). The
// result and count as int (md reads at most a few hundred bytes; on x86-64
// an ssize_t's low half is the int): koffi converts them ~20 ns faster.
const readToAddress = libc.func('int read(int fd, uintptr_t buf, int count)');
const mmapFn = libc.func('void *mmap(void *addr, unsigned long length, int prot, int flags, int fd, long offset)');
const munmapFn = libc.func('int munmap(void *addr, unsigned long length)');

export const PROT_READ = 1;
export const PROT_WRITE = 2;
const MAP_SHARED = 1;

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
  const r = readToAddress(fd, buf.address, length) as number;
  return r < 0 ? fail() : r;
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
