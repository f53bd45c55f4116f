// pmcd for tests: started on a socket in a temporary directory (never the
// default one), its own admin state and config file, stopped with SIGTERM
// (SIGKILL if it hangs). Clients connect with TSPMC_SOCKET set to that path.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Libpmc } from '../src/lib/index.js';
import { PmcdClient } from '../src/lib/pmcd-client.js';

export const PMCD = fileURLToPath(new URL('../bin/pmcd.cjs', import.meta.url));
export const DIST = fileURLToPath(new URL('..', import.meta.url));

export interface PmcdOptions {
  /** Lines of the config file (tunables, pmcd.*). */
  config?: string[];
  env?: NodeJS.ProcessEnv;
  args?: string[];
  /** pmcd's RLIMIT_NOFILE (soft and hard), set by the shell that execs it. */
  nofile?: number;
}

/** pmcds not cleaned up when the test process exits (a crash, a failed hook) go with it, and their directories. */
const running = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [c, dir] of running) {
    c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

export class TestPmcd {
  private stderrText = '';
  private constructor(
    readonly dir: string,
    readonly socket: string,
    readonly child: ChildProcess,
  ) {}

  static async start(o: PmcdOptions = {}): Promise<TestPmcd> {
    const dir = mkdtempSync(join(tmpdir(), 'pmcd-test-'));
    chmodSync(dir, 0o755);
    const config = join(dir, 'tspmc.conf');
    writeFileSync(config, (o.config ?? []).join('\n') + '\n');
    const socket = join(dir, 'pmcd.sock');
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, TSPMC_ADMIN_STATE: join(dir, 'admin.json'), TSPMC_CONFIG: config, ...o.env };
    const argv = [PMCD, '--socket', socket, ...(o.args ?? [])];
    const child =
      o.nofile === undefined
        ? spawn(process.execPath, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] })
        : spawn('/bin/sh', ['-c', `ulimit -n ${o.nofile} && exec "$0" "$@"`, process.execPath, ...argv], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const p = new TestPmcd(dir, socket, child);
    running.set(child, dir);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (p.stderrText += d));
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (p.stderrText.includes('pmcd: serving')) resolve();
      };
      child.stderr!.on('data', check);
      child.once('exit', (code) => reject(new Error(`pmcd exited (${code}) before serving: ${p.stderrText}`)));
      setTimeout(() => reject(new Error(`pmcd did not start: ${p.stderrText}`)), 20_000).unref();
    });
    return p;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** What pmcd wrote to stderr so far (its log). */
  get stderr(): string {
    return this.stderrText;
  }

  /** Environment for a tool or script that should talk to this pmcd. */
  clientEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ...process.env, TSPMC_LOCAL: undefined, TSPMC_SOCKET: this.socket, TSPMC_ADMIN_STATE: join(this.dir, 'client-admin.json'), ...extra };
  }

  connect(): Promise<PmcdClient> {
    return PmcdClient.connect(this.socket);
  }

  async libpmc(): Promise<Libpmc> {
    return Libpmc.init(await this.connect());
  }

  /** Descriptors pmcd holds now. */
  fds(): string[] {
    return readdirSync(`/proc/${this.pid}/fd`);
  }

  /** pmcd's resident memory in KiB. */
  rssKiB(): number {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))![1]);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, and the exit status; SIGKILL after 20 s. */
  async stop(): Promise<number | null> {
    if (!this.alive) return this.child.exitCode;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const guard = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    const [code] = (await exited) as [number | null];
    clearTimeout(guard);
    return code;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    running.delete(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** SIGKILL to each child still running, and its exit. */
export async function killChildren(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = once(c, 'exit');
      c.kill('SIGKILL');
      await exited;
    }),
  );
}

/** Polls `f` every 10 ms until it is true; the time it took, or a failure after `hangMs` (a hang guard). */
export async function waitFor(what: string, f: () => boolean | Promise<boolean>, hangMs = 60_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await f()) return Date.now() - t0;
    if (Date.now() - t0 > hangMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A user made for a test (useradd), removed by drop(). */
export class TestUser {
  private constructor(
    readonly name: string,
    readonly uid: number,
    readonly gid: number,
  ) {}

  static create(tag: string): TestUser {
    const name = `tspmc-${tag}-${Math.random().toString(16).slice(2, 8)}`;
    execFileSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', name]);
    const id = (flag: string): number => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }));
    return new TestUser(name, id('-u'), id('-g'));
  }

  /** setpriv's prefix: this user's uid and gid, no supplementary groups. */
  get prefix(): string[] {
    return ['setpriv', `--reuid=${this.uid}`, `--regid=${this.gid}`, '--clear-groups'];
  }

  canRead(file: string): boolean {
    try {
      execFileSync(this.prefix[0], [...this.prefix.slice(1), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(file)}, require('fs').constants.R_OK)`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  drop(): void {
    execFileSync('userdel', [this.name]);
  }
}

/**
 * Where a user's script imports tspmc from: dist/ itself when the user can
 * read it and the packages it loads, else a world-readable copy in `stage`.
 */
export function distFor(user: TestUser, stage: string): string {
  const root = join(DIST, '..');
  const needs = [join(DIST, 'src/lib/index.js'), join(DIST, 'bin/pmcstat.cjs'), join(root, 'node_modules/koffi/package.json'), join(root, 'node_modules/zod/package.json')];
  if (needs.every((f) => user.canRead(f))) return DIST;
  for (const d of ['src', 'bin']) cpSync(join(DIST, d), join(stage, 'dist', d), { recursive: true });
  for (const f of ['index.js', 'indirect.js', 'package.json', `build/koffi/${process.platform}_${process.arch}`]) {
    cpSync(join(root, 'node_modules/koffi', f), join(stage, 'node_modules/koffi', f), { recursive: true });
  }
  cpSync(join(root, 'node_modules/zod'), join(stage, 'node_modules/zod'), { recursive: true });
  writeFileSync(join(stage, 'package.json'), '{ "type": "module" }\n');
  execFileSync('chmod', ['-R', 'a+rX', stage]);
  return join(stage, 'dist');
}
