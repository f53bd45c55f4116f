// A real terminal for the tests of what pmcstat shows a person: a tmux
// server of the test's own (its own socket name, no user configuration),
// one pane running the command, keys sent with send-keys and the screen
// read with capture-pane. The pane stays after the command exits, so its
// last screen can still be read.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasTool } from './report-fixture.js';

export const noTmux: string | false = hasTool('tmux') ? false : 'tmux is not installed (apt-get install tmux; .ci/run does)';

let sessions = 0;

const shellWord = (w: string): string => `'${w.replaceAll("'", "'\\''")}'`;

export class Terminal {
  private readonly socket = `tspmc-test-${process.pid}-${++sessions}`;

  /** Runs `argv` in a `width` x `height` terminal; `dir` holds tmux's configuration file. */
  constructor(argv: string[], dir: string, { width = 120, height = 30, env = {} as Record<string, string> } = {}) {
    const conf = join(dir, `tmux-${sessions}.conf`);
    writeFileSync(conf, 'set -g remain-on-exit on\nset -g history-limit 2000\n');
    const exports = Object.entries(env).map(([k, v]) => `${k}=${shellWord(v)} `).join('');
    this.tmux('-f', conf, 'new-session', '-d', '-x', String(width), '-y', String(height), `${exports}exec ${argv.map(shellWord).join(' ')}`);
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  /** The screen as text, one line per row. */
  screen(): string {
    return this.tmux('capture-pane', '-p', '-t', '0');
  }

  /** Types keys (tmux key names: 'q', 'Space', 'Enter'). */
  send(...keys: string[]): void {
    this.tmux('send-keys', '-t', '0', ...keys);
  }

  /** Whether the command has exited (the pane is dead). */
  exited(): boolean {
    return this.tmux('display-message', '-p', '-t', '0', '#{pane_dead}').trim() === '1';
  }

  /** The exit status of the command, once it has exited. */
  exitStatus(): number {
    return Number(this.tmux('display-message', '-p', '-t', '0', '#{pane_dead_status}').trim());
  }

  /** Polls the screen until `ready` holds (a hang guard, not a timing assertion); returns that screen. */
  async waitFor(ready: (screen: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < until) {
      last = this.screen();
      if (ready(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`terminal: gave up waiting for ${what}; the screen:\n${last}`);
  }

  /** Ends the tmux server (and whatever still runs in it). */
  close(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // Already gone.
    }
  }
}
