// The GNU build id of an ELF file (NT_GNU_BUILD_ID in a PT_NOTE segment):
// what pprof consumers (Parca, Pyroscope, pprof's symbolizer) match
// binaries and debug files by. Only the program headers and the notes are
// read; a file without one (or not an ELF64 LE file) has none.
import { closeSync, openSync, readSync } from 'node:fs';

const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;
const cache = new Map<string, string | undefined>();

function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const n = readSync(fd, b, 0, length, offset);
  return b.subarray(0, n);
}

function scan(fd: number): string | undefined {
  const eh = readAt(fd, 0, 64);
  if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return undefined;
  const phoff = Number(eh.readBigUInt64LE(0x20));
  const phentsize = eh.readUInt16LE(0x36);
  const phnum = eh.readUInt16LE(0x38);
  const ph = readAt(fd, phoff, phentsize * phnum);
  for (let i = 0; i + 1 <= phnum && (i + 1) * phentsize <= ph.length; i++) {
    const p = i * phentsize;
    if (ph.readUInt32LE(p) !== PT_NOTE) continue;
    const notes = readAt(fd, Number(ph.readBigUInt64LE(p + 8)), Math.min(Number(ph.readBigUInt64LE(p + 0x20)), 1 << 16));
    // Each note: namesz, descsz, type, then name and desc, each padded to 4 bytes.
    for (let o = 0; o + 12 <= notes.length; ) {
      const namesz = notes.readUInt32LE(o);
      const descsz = notes.readUInt32LE(o + 4);
      const type = notes.readUInt32LE(o + 8);
      const name = o + 12;
      const desc = name + ((namesz + 3) & ~3);
      if (desc + descsz > notes.length) break;
      if (type === NT_GNU_BUILD_ID && notes.toString('latin1', name, name + namesz) === 'GNU\0') return notes.toString('hex', desc, desc + descsz);
      o = desc + ((descsz + 3) & ~3);
    }
  }
  return undefined;
}

/** The build id as hex (as `readelf -n` prints it), or undefined. */
export function buildId(path: string): string | undefined {
  if (cache.has(path)) return cache.get(path);
  let id: string | undefined;
  try {
    const fd = openSync(path, 'r');
    try {
      id = scan(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    id = undefined;
  }
  cache.set(path, id);
  return id;
}
