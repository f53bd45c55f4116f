// printf-compatible number formatting for the pmcstat text shapes.

/**
 * `%.2f` as C prints it. Number.prototype.toFixed rounds an exact tie up
 * (3.125 -> "3.13") where glibc rounds it to even ("3.12"); a tie at two
 * decimals is exactly representable only when 8x is an odd integer.
 */
export function fixed2(x: number): string {
  const eighths = x * 8;
  if (Number.isInteger(eighths) && Math.abs(eighths) % 2 === 1) {
    const lower = Math.floor(x * 100);
    return ((lower % 2 === 0 ? lower : lower + 1) / 100).toFixed(2);
  }
  return x.toFixed(2);
}

/** `%05.2f`: two decimals, zero-padded to width 5. */
export function percent05(x: number): string {
  return fixed2(x).padStart(5, '0');
}
