// pmcstat's counting output: a header line naming each PMC (`p/<event>` for
// process PMCs, `s/<cpu>/<event>` for system PMCs) and a row of values per
// interval, columns as wide as a 64-bit count or the header (pmcstat.c's
// field widths); tspmc's --json form; and where they go (-o). For a person at
// a terminal the digits are grouped by thousands and the end of the run is a
// summary with what the events allow to derive (perf stat's figures), and the
// elapsed time.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { PmcError } from '../pmc-error.js';
import { fileError } from './cli-error.js';

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
/** The same digits grouped by thousands: a separator per three digits. */
const GROUPED_WIDTH = DISPLAY_WIDTH + Math.floor((DISPLAY_WIDTH - 1) / 3);

function widths(c: CountColumn, grouped: boolean): { width: number; skip: number } {
  const digits = grouped ? GROUPED_WIDTH : DISPLAY_WIDTH;
  const header = c.event.length + 2 + (c.mode === 'SC' ? 3 : 0);
  return header > digits ? { width: header, skip: 0 } : { width: digits, skip: digits - header };
}

/** 1234567 -> "1,234,567". */
export function groupThousands(n: bigint | number | string): string {
  const [int, frac] = String(n).split('.');
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (frac !== undefined ? `.${frac}` : '');
}

export function formatHeader(columns: CountColumn[], grouped = false): string {
  let line = HEADER_PREFIX;
  for (const c of columns) {
    const { width, skip } = widths(c, grouped);
    const w = width - skip - 2;
    line += ' '.repeat(skip);
    line += c.mode === 'SC' ? `s/${String(c.cpu).padStart(2, '0')}/${c.event.padEnd(w - 3)} ` : `p/${c.event.padStart(w)} `;
  }
  return line.trimEnd();
}

/** One row; incremental columns print the change since the previous row. */
export function formatRow(columns: CountColumn[], values: bigint[], grouped = false): string {
  let line = '';
  columns.forEach((c, i) => {
    const shown = c.cumulative ? values[i] : values[i] - c.saved;
    c.saved = values[i];
    line += (grouped ? groupThousands(shown) : `${shown}`).padStart(widths(c, grouped).width + (i === 0 ? HEADER_PREFIX.length : 0)) + ' ';
  });
  return line.trimEnd();
}

/** Events whose count is nanoseconds of CPU time. */
const CLOCKS = new Set(['task-clock', 'cpu-clock']);
/** Events shown per second. */
const RATES = new Set(['page-faults', 'faults', 'minor-faults', 'major-faults', 'context-switches', 'cs', 'cpu-migrations', 'migrations']);
const CYCLES = new Set(['cycles', 'cpu-cycles']);

/** `1234.5` -> "1.23 K/sec", as perf stat prints rates. */
function perSecond(x: number): string {
  const units: [number, string][] = [[1e9, ' G'], [1e6, ' M'], [1e3, ' K']];
  for (const [size, unit] of units) if (x >= size) return `${(x / size).toFixed(2)}${unit}/sec`;
  return `${x.toFixed(2)}/sec`;
}

/** A word as a shell would need it written. */
const shellWord = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`);

/** What a summary is about: the command (with its exit status), the -t targets, or the system. */
export function measured(command: string[], targets: string[], exitStatus?: number): string {
  if (command.length > 0) return `${command.map(shellWord).join(' ')}${exitStatus !== undefined ? ` (exit status ${exitStatus})` : ''}`;
  if (targets.length > 0) return `process ${targets.join(', ')}`;
  return 'the system';
}

/**
 * The end of a run for a person: one line per PMC with its total (grouped;
 * clocks in milliseconds), then `#` and what it gives: CPUs utilised
 * (task-clock over elapsed time), events per second (per second on CPU when
 * task-clock was counted, as perf stat does, else per elapsed second),
 * instructions per cycle; then the elapsed time. `what` names what was measured.
 */
export function formatSummary(columns: CountColumn[], values: bigint[], elapsedNs: bigint, what: string): string {
  const elapsed = Number(elapsedNs) / 1e9;
  const total = (names: Set<string> | string, mode: 'TC' | 'SC'): number | undefined => {
    let sum: number | undefined;
    columns.forEach((c, i) => {
      if (c.mode === mode && (typeof names === 'string' ? c.event === names : names.has(c.event))) sum = (sum ?? 0) + Number(values[i]);
    });
    return sum;
  };
  const labels = columns.map((c) => (c.mode === 'SC' ? `${c.event} (CPU ${c.cpu})` : c.event));
  const labelWidth = Math.max(...labels.map((l) => l.length), 16);
  const lines = columns.map((c, i) => {
    const v = values[i];
    const clock = CLOCKS.has(c.event);
    const count = clock ? `${groupThousands((Number(v) / 1e6).toFixed(2))} msec` : `${groupThousands(v)}     `;
    // Process PMCs are compared with the process's own CPU time, system PMCs with the time elapsed.
    const onCpu = c.mode === 'TC' ? total('task-clock', 'TC') : undefined;
    let derived = '';
    if (clock && c.mode === 'TC' && elapsed > 0) derived = `${(Number(v) / 1e9 / elapsed).toFixed(2)} CPUs utilised`;
    else if (RATES.has(c.event)) {
      const seconds = onCpu !== undefined ? onCpu / 1e9 : elapsed;
      if (seconds > 0) derived = `${perSecond(Number(v) / seconds)}${onCpu !== undefined ? ' on CPU' : ''}`;
    } else if (c.event === 'instructions') {
      const cycles = total(CYCLES, c.mode);
      if (cycles) derived = `${(Number(v) / cycles).toFixed(2)} instructions per cycle`;
    }
    return `${count.padStart(24)}  ${labels[i].padEnd(labelWidth)}${derived ? `  #  ${derived}` : ''}`.trimEnd();
  });
  return ['', `pmcstat: counts for ${what}:`, '', ...lines, '', `${elapsed.toFixed(3).padStart(19)} seconds elapsed`, ''].join('\n');
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

/**
 * Where the counts go: -o FILE, else rows to stderr and JSON to stdout.
 * FILE is opened at once, so that a path that cannot be written fails before
 * anything starts. Writes are synchronous (rows are small, and a row written
 * before exit must not be lost). If FILE fails later (a full disk, a reader
 * gone), that is said once and the rest goes where it would go without -o.
 */
export class CountOutput {
  private fd?: number;
  /** The write error of -o FILE, once there was one. */
  error?: PmcError;

  constructor(private readonly path?: string) {
    if (path === undefined) return;
    try {
      this.fd = openSync(path, 'w', 0o644);
    } catch (e) {
      throw fileError('-o', path, 'cannot open for writing', e);
    }
  }

  /** The header: written before anything runs, so a failure throws (and nothing else is printed). */
  header(line: string): void {
    if (this.fd === undefined) process.stderr.write(line + '\n');
    else if (!this.writeFile(line + '\n')) throw this.error!;
  }

  row(line: string): void {
    this.write(line + '\n', process.stderr);
  }

  json(text: string): void {
    this.write(text + '\n', process.stdout);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private write(text: string, fallback: NodeJS.WriteStream): void {
    if (this.fd !== undefined) {
      if (this.writeFile(text)) return;
      process.stderr.write(`pmcstat: ERROR: ${this.error!.message}; the counts follow on ${fallback === process.stdout ? 'stdout' : 'stderr'}\n`);
    }
    fallback.write(text);
  }

  private writeFile(text: string): boolean {
    try {
      const bytes = Buffer.from(text);
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd!, bytes, done);
      return true;
    } catch (e) {
      this.error = fileError('-o', this.path!, 'cannot write', e);
      this.close();
      return false;
    }
  }
}
