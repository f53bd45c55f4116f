// The vdso is one image per kernel, mapped into every process: the copy in
// this process (found in /proc/self/maps, read through /proc/self/mem) is
// the one the sampled processes ran.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { PmcError } from '../pmc-error.js';

export function readOwnVdso(): Buffer {
  const maps = readFileSync('/proc/self/maps', 'latin1');
  const line = maps.split('\n').find((l) => l.endsWith(' [vdso]'));
  if (!line) throw new PmcError('ENOENT', '/proc/self/maps: this process has no [vdso] mapping');
  const [lo, hi] = line.slice(0, line.indexOf(' ')).split('-').map((h) => parseInt(h, 16));
  const buf = Buffer.alloc(hi - lo);
  const fd = openSync('/proc/self/mem', 'r');
  try {
    const n = readSync(fd, buf, 0, buf.length, lo);
    if (n !== buf.length) throw new PmcError('EIO', `/proc/self/mem: read ${n} of ${buf.length} vdso bytes`);
  } finally {
    closeSync(fd);
  }
  return buf;
}
