// koffi, the FFI, loaded for what we call of it. Its entry point (index.js)
// also loads its build tools and with them https, zlib and crypto: about 5 ms
// of CPU at every start. The prebuilt binary for this platform is the whole
// runtime API; when it cannot be loaded (another libc, another layout of the
// package), the entry point finds the right one.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function loadKoffi(): typeof import('koffi') {
  try {
    const native = require(`koffi/build/koffi/${process.platform}_${process.arch}/koffi.node`) as typeof import('koffi') & { version?: string };
    // koffi's own check: the binary must be the package's.
    if (native.version === (require('koffi/package.json') as { version: string }).version) return native;
  } catch {
    // fall through to the entry point
  }
  // koffi 2.x ships prebuilt binaries in the package: no install script runs.
  return require('koffi') as typeof import('koffi');
}

export const koffi = loadKoffi();
