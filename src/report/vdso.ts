// The vdso is one image per kernel, mapped into every process: the copy in
// this process is the one the sampled processes ran. It is found through the
// auxiliary vector (AT_SYSINFO_EHDR in /proc/self/auxv: a few hundred bytes,
// where /proc/self/maps of a Node process takes milliseconds to produce) and
// read through /proc/self/mem: its ELF header says how long it is.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { PmcError } from '../pmc-error.js';

const AT_SYSINFO_EHDR = 33;

/** The vdso's load address, from this process's auxiliary vector. */
function vdsoBase(): number {
  const auxv = readFileSync('/proc/self/auxv');
  for (let o = 0; o + 16 <= auxv.length; o += 16) {
    if (auxv.readUInt32LE(o) === AT_SYSINFO_EHDR && auxv.readUInt32LE(o + 4) === 0) return auxv.readUInt32LE(o + 8) + auxv.readUInt32LE(o + 12) * 0x1_0000_0000;
  }
  throw new PmcError('ENOENT', '/proc/self/auxv: this process has no vdso (no AT_SYSINFO_EHDR)');
}

function readAt(fd: number, at: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, at);
  if (n !== length) throw new PmcError('EIO', `/proc/self/mem: read ${n} of ${length} vdso bytes`);
  return buf;
}

export function readOwnVdso(): Buffer {
  const base = vdsoBase();
  const fd = openSync('/proc/self/mem', 'r');
  try {
    const eh = readAt(fd, base, 64);
    if (eh.readUInt32BE(0) !== 0x7f454c46) throw new PmcError('ENOEXEC', 'the vdso does not start with an ELF header');
    // The image runs to the end of its section headers, which come last.
    const shoff = eh.readUInt32LE(40) + eh.readUInt32LE(44) * 0x1_0000_0000;
    const size = shoff + eh.readUInt16LE(58) * eh.readUInt16LE(60);
    if (size < 64 || size > 1 << 20) throw new PmcError('ENOEXEC', `the vdso's section headers end at ${size} bytes`);
    return readAt(fd, base, size);
  } finally {
    closeSync(fd);
  }
}
