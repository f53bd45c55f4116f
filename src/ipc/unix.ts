// Unix IPC that Node does not offer, through the FFI: anonymous pipes (for
// now). lib and pmcd use it; it knows nothing of PMCs.
import { koffi } from '../ffi.js';
import { PmcError } from '../pmc-error.js';

const libc = koffi.load('libc.so.6');

const pipe2Fn = libc.func('int pipe2(_Out_ int *fds, int flags)');

const O_CLOEXEC = 0o2000000;

/** pipe2(2) with O_CLOEXEC: [read end, write end]. */
export function pipe(): [number, number] {
  const fds = [0, 0];
  if ((pipe2Fn(fds, O_CLOEXEC) as number) < 0) throw PmcError.fromErrno(koffi.errno(), 'pipe2');
  return [fds[0], fds[1]];
}
