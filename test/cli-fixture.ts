// Shared by the end-to-end tests of pmcstat and pmccontrol: runs the tools
// as a user would (node dist/bin/<tool>.cjs, the bundles npm's bin links run), builds the C workloads in a
// temporary directory, and reads what the tools wrote.
import { execFileSync, spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PMCSTAT = fileURLToPath(new URL('../bin/pmcstat.cjs', import.meta.url));
export const PMCCONTROL = fileURLToPath(new URL('../bin/pmccontrol.cjs', import.meta.url));

export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
}

/** The temporary directories made here, removed when this test file's process exits, whatever its tests did. */
const made: string[] = [];
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Compiles test/fixtures/<source> into dir/<name> with frame pointers, unoptimized. */
export function buildC(dir: string, source: string, name: string, extra: string[] = []): string {
  const out = join(dir, name);
  execFileSync('gcc', ['-O0', '-fno-omit-frame-pointer', ...extra, '-o', out, fixture(source)]);
  return out;
}

export interface ToolRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as another user: a command prefix such as setpriv's. */
  prefix?: string[];
  timeoutMs?: number;
}

function commandLine(script: string, args: string[], o: RunOptions): [string, string[]] {
  const argv = [process.execPath, script, ...args];
  return o.prefix ? [o.prefix[0], [...o.prefix.slice(1), ...argv]] : [argv[0], argv.slice(1)];
}

function runTool(script: string, args: string[], o: RunOptions): ToolRun {
  const [cmd, argv] = commandLine(script, args, o);
  const r = spawnSync(cmd, argv, {
    encoding: 'utf8',
    env: { ...process.env, ...o.env },
    cwd: o.cwd,
    timeout: o.timeoutMs ?? 50_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

export function pmcstat(args: string[], o: RunOptions = {}): ToolRun {
  return runTool(PMCSTAT, args, o);
}

export function pmccontrol(args: string[], o: RunOptions = {}): ToolRun {
  return runTool(PMCCONTROL, args, o);
}

/** pmcstat running in the background; `done` resolves when it exits. */
export function pmcstatAsync(args: string[], o: RunOptions & Pick<SpawnOptions, 'stdio'> = {}): {
  child: ReturnType<typeof spawn>;
  done: Promise<ToolRun>;
} {
  const [cmd, argv] = commandLine(PMCSTAT, args, o);
  const child = spawn(cmd, argv, { env: { ...process.env, ...o.env }, cwd: o.cwd, stdio: o.stdio ?? ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<ToolRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  return { child, done };
}

/** A run that must have succeeded; the assertion message carries its stderr. */
/** Removes the JIT maps a workload said it left ("perf map PATH" lines of its output). */
export function removePerfMaps(output: string): void {
  for (const m of output.matchAll(/^perf map (\/tmp\/perf-\d+\.map)$/gm)) rmSync(m[1], { force: true });
}

export function ok(r: ToolRun, what: string): ToolRun {
  if (r.status !== 0) throw new Error(`${what}: exit status ${r.status} (signal ${r.signal})\n${r.stderr}`);
  return r;
}

/** pmcstat -R log: the records as text lines. */
export function logText(log: string): string[] {
  return ok(pmcstat(['-R', log]), `pmcstat -R ${log}`).stdout.split('\n');
}

/** pmcstat -R log --folded -: stack (without the count) -> samples. */
export function foldedStacks(log: string): Map<string, number> {
  const out = ok(pmcstat(['-R', log, '--folded', '-']), `pmcstat -R ${log} --folded -`).stdout;
  const stacks = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^(.*) (\d+)$/.exec(line);
    if (m) stacks.set(m[1], (stacks.get(m[1]) ?? 0) + Number(m[2]));
  }
  return stacks;
}

/** Samples of the folded stacks whose frames (split at `;`) satisfy `match`. */
export function samplesWhere(stacks: Map<string, number>, match: (frames: string[]) => boolean): number {
  let n = 0;
  for (const [stack, count] of stacks) if (match(stack.split(';'))) n += count;
  return n;
}

export interface LogStats {
  samples: number;
  dropped: number;
  lost: number;
  records: Record<string, number>;
}

/** pmcstat -R log --stats --json. */
export function logStats(log: string): LogStats {
  return JSON.parse(ok(pmcstat(['-R', log, '--stats', '--json']), `pmcstat -R ${log} --stats --json`).stdout) as LogStats;
}

/** Lines that look like a JavaScript stack trace. */
export function stackTraceLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\s{4}at /.test(l));
}
