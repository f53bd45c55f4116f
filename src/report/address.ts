// Addresses as plain numbers. A 64-bit PC does not fit a double, and turning
// every frame of every sample into a BigInt is slow, so x86_64 addresses are
// packed into one exact number: user addresses keep their value (below 2^52),
// and kernel-half addresses (0xffff8000_00000000 and up) are moved to just
// above 2^52, keeping their order. Anything else is not a canonical address.

const TWO_32 = 0x1_0000_0000;
/** Where the kernel half starts in the packed space. */
export const KERNEL_SPACE = 2 ** 52;
const KERNEL_HI = 0xffff8000;
const USER_HI_LIMIT = 0x100000; // hi word of 2^52

/** Not an address (non-canonical on x86_64). */
export const BAD_ADDRESS = -1;

/** Packs the two 32-bit halves of an address. */
export function packAddress(hi: number, lo: number): number {
  if (hi < USER_HI_LIMIT) return hi * TWO_32 + lo;
  if (hi >= KERNEL_HI) return KERNEL_SPACE + (hi - KERNEL_HI) * TWO_32 + lo;
  return BAD_ADDRESS;
}

export function addressFromBigInt(a: bigint): number {
  return packAddress(Number((a >> 32n) & 0xffffffffn), Number(a & 0xffffffffn));
}

export function isKernelAddress(n: number): boolean {
  return n >= KERNEL_SPACE;
}

/** Lower-case hex without prefix, of the real (unpacked) address. */
export function addressHex(n: number): string {
  if (n < KERNEL_SPACE) return n.toString(16);
  const k = n - KERNEL_SPACE;
  const hi = KERNEL_HI + Math.floor(k / TWO_32);
  const lo = k - Math.floor(k / TWO_32) * TWO_32;
  return hi.toString(16) + lo.toString(16).padStart(8, '0');
}

/** pmcstat prints addresses with `%p`: `0x` and lower-case hex. */
export function formatPointer(n: number): string {
  return '0x' + addressHex(n);
}

/** Parses 1 to 16 hex digits (no prefix) into a packed address; BAD_ADDRESS when malformed. */
export function parseHexAddress(s: string): number {
  if (s.length === 0 || s.length > 16 || !/^[0-9a-fA-F]+$/.test(s)) return BAD_ADDRESS;
  const split = Math.max(0, s.length - 8);
  const hi = split === 0 ? 0 : parseInt(s.slice(0, split), 16);
  return packAddress(hi, parseInt(s.slice(split), 16));
}
