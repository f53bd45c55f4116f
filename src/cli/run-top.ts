// pmcstat -T, top mode: the sampling PMCs run as in any measurement (the
// command, the -t targets or the whole system, with the same end
// conditions), their log is read back as it grows, and every -w seconds
// (default 1) the hottest functions are shown. On a terminal the screen is
// redrawn in place and keys change the view; otherwise each refresh is
// printed as plain text. With -R the log's top view is printed once.
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Libpmc } from '../lib/index.js';
import { LogReader, visitLog, type RecordVisitor } from '../log/log-reader.js';
import { demangleFrames } from '../report/demangle.js';
import { TopProfile } from '../report/top-profile.js';
import type { PmcstatArgs } from './pmcstat-args.js';
import { runMeasurement } from './run-measurement.js';
import { applyTopKey, formatTop, type TopState } from './top-screen.js';

const DEFAULT_REFRESH_S = 1;
const PLAIN_WIDTH = 160;
const PLAIN_ROWS = 30;
const READ_SIZE = 1 << 20;

/** The part of a growing log not read yet, fed to a visitor at each read(). */
class LogTail {
  private readonly fd: number;
  private offset = 0;
  private readonly reader = new LogReader();

  constructor(path: string) {
    this.fd = openSync(path, 'r');
  }

  read(visitor: RecordVisitor): void {
    for (;;) {
      const chunk = Buffer.allocUnsafe(READ_SIZE);
      const n = readSync(this.fd, chunk, 0, READ_SIZE, this.offset);
      if (n === 0) return;
      this.offset += n;
      this.reader.feed(chunk.subarray(0, n));
      this.reader.visit(visitor);
      this.reader.release();
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The screen of a terminal: the alternate screen, redrawn from the top; keys read raw. */
class TerminalScreen {
  private open = true;

  constructor(private readonly out: NodeJS.WriteStream) {
    out.write('\x1b[?1049h\x1b[?25l');
  }

  draw(lines: string[]): void {
    this.out.write('\x1b[H' + lines.map((l) => l + '\x1b[K').join('\r\n') + '\x1b[J');
  }

  get size(): { width: number; height: number } {
    return { width: this.out.columns ?? 80, height: this.out.rows ?? 24 };
  }

  close(): void {
    if (this.open) this.out.write('\x1b[?25h\x1b[?1049l');
    this.open = false;
  }
}

function initialState(args: PmcstatArgs): TopState {
  return { pmc: 0, merged: true, chains: true, perProcess: false, recent: false, choosingCost: false, paused: false, threshold: args.topThreshold, skipLinks: args.topSkipLink };
}

const plain = (profile: TopProfile, state: TopState, elapsed: number): string =>
  formatTop(profile, state, { width: PLAIN_WIDTH, height: PLAIN_ROWS, elapsed, keys: false }).join('\n') + '\n\n';

export async function runTop(args: PmcstatArgs): Promise<number> {
  const profile = new TopProfile({ kallsyms: args.kernelSymbols, root: args.root });
  const state = initialState(args);
  if (args.analyze !== undefined) {
    await visitLog(args.analyze, profile);
    demangleFrames(profile.symbolizer.frames);
    process.stdout.write(plain(profile, state, 0));
    return 0;
  }

  const tmpDir = args.logFile === undefined ? mkdtempSync(join(tmpdir(), 'pmcstat-top-')) : undefined;
  const logPath = args.logFile ?? join(tmpDir!, 'pmcstat.log');
  const stdin = process.stdin;
  const screen = process.stdout.isTTY ? new TerminalScreen(process.stdout) : undefined;
  const interactive = screen !== undefined && stdin.isTTY === true;
  let quit!: () => void;
  const quitting = new Promise<void>((r) => (quit = r));
  let lib: Libpmc | undefined;
  let tail: LogTail | undefined;
  let started = 0;
  const elapsed = (): number => (started ? (Date.now() - started) / 1000 : 0);

  const draw = (): void => {
    if (!screen) process.stdout.write(plain(profile, state, elapsed()));
    else screen.draw(formatTop(profile, state, { ...screen.size, elapsed: elapsed(), keys: interactive }));
  };
  /** Reads what the log gained since the last look. */
  const catchUp = (): void => {
    (tail ??= new LogTail(logPath)).read(profile);
    demangleFrames(profile.symbolizer.frames);
  };
  const update = async (running: Libpmc): Promise<void> => {
    // The log's buffers go to the file at each refresh, not only when full.
    await running.flushLogfile();
    catchUp();
    // The delta view shows the samples of the interval this refresh ends.
    profile.reset();
    if (!state.paused) draw();
  };
  let refreshing: Promise<void> | undefined;
  let stopped = false;
  let failure: unknown;
  const refresh = (): void => {
    if (refreshing || !lib || stopped) return;
    refreshing = update(lib)
      .catch((e: unknown) => {
        failure ??= e;
        quit();
      })
      .finally(() => (refreshing = undefined));
  };

  // One read may hold several keys (typed ahead, or pasted).
  const onKey = (data: Buffer): void => {
    let changed = false;
    for (const key of data.toString('utf8')) {
      const done = applyTopKey(profile, state, key);
      if (done === 'quit') return quit();
      changed ||= done;
    }
    if (changed) draw();
  };
  if (interactive) {
    stdin.setRawMode(true);
    stdin.on('data', onKey);
    stdin.resume();
  }

  let timer: NodeJS.Timeout | undefined;
  try {
    const status = await runMeasurement(
      { ...args, logFile: logPath },
      {
        stop: quitting,
        started: (l) => {
          lib = l;
          started = Date.now();
          timer = setInterval(refresh, (args.interval ?? DEFAULT_REFRESH_S) * 1000);
        },
        // No refresh once the log is closing.
        stopping: async () => {
          stopped = true;
          clearInterval(timer);
          await refreshing;
        },
      },
    );
    clearInterval(timer);
    if (failure !== undefined) throw failure;
    // Whatever the last refresh did not see: the log is closed now.
    catchUp();
    screen?.close();
    state.paused = false;
    state.recent = false;
    state.note = undefined;
    process.stdout.write(plain(profile, state, elapsed()));
    return status;
  } finally {
    clearInterval(timer);
    if (interactive) {
      stdin.off('data', onKey);
      stdin.setRawMode(false);
      stdin.pause();
    }
    screen?.close();
    tail?.close();
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }
}
