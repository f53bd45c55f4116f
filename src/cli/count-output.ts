// pmcstat's counting output: a header line naming each PMC (`p/<event>` for
// process PMCs, `s/<cpu>/<event>` for system PMCs) and a row of values per
// interval, columns as wide as a 64-bit count or the header (pmcstat.c's
// field widths); and tspmc's --json form.

export interface CountColumn {
  event: string;
  mode: 'TC' | 'SC';
  cpu?: number;
  cumulative: boolean;
  /** The value printed last, for incremental rows. */
  saved: bigint;
}

const HEADER_PREFIX = '# ';
/** Decimal digits of a 64-bit counter: floor(64 / log2(10)) + 1. */
const DISPLAY_WIDTH = Math.floor(64 / 3.32193) + 1;

function widths(c: CountColumn): { width: number; skip: number } {
  const header = c.event.length + 2 + (c.mode === 'SC' ? 3 : 0);
  return header > DISPLAY_WIDTH ? { width: header, skip: 0 } : { width: DISPLAY_WIDTH, skip: DISPLAY_WIDTH - header };
}

export function formatHeader(columns: CountColumn[]): string {
  let line = HEADER_PREFIX;
  for (const c of columns) {
    const { width, skip } = widths(c);
    const w = width - skip - 2;
    line += ' '.repeat(skip);
    line += c.mode === 'SC' ? `s/${String(c.cpu).padStart(2, '0')}/${c.event.padEnd(w - 3)} ` : `p/${c.event.padStart(w)} `;
  }
  return line.trimEnd();
}

/** One row; incremental columns print the change since the previous row. */
export function formatRow(columns: CountColumn[], values: bigint[]): string {
  let line = '';
  columns.forEach((c, i) => {
    const shown = c.cumulative ? values[i] : values[i] - c.saved;
    c.saved = values[i];
    line += `${shown}`.padStart(widths(c).width + (i === 0 ? HEADER_PREFIX.length : 0)) + ' ';
  });
  return line.trimEnd();
}

export interface CountJson {
  pmcs: { event: string; mode: 'TC' | 'SC'; cpu?: number; value: string | number }[];
  elapsed_ns: number;
  exit_status?: number;
}

/** Values stay exact: a count beyond 2^53 is written as a JSON number string-free only when it fits. */
export function formatJson(columns: CountColumn[], values: bigint[], elapsedNs: bigint, exitStatus?: number): string {
  const out: CountJson = {
    pmcs: columns.map((c, i) => ({
      event: c.event,
      mode: c.mode,
      ...(c.mode === 'SC' ? { cpu: c.cpu } : {}),
      value: values[i] <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(values[i]) : values[i].toString(),
    })),
    elapsed_ns: Number(elapsedNs),
  };
  if (exitStatus !== undefined) out.exit_status = exitStatus;
  return JSON.stringify(out);
}
