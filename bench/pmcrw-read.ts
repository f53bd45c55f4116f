// PMCRW read cost: one read of a running process-mode task-clock PMC through
// the in-process module, against a C loop calling read() on an equivalent
// perf fd. Every way reads a counter on the same single-threaded target;
// the ways take turns for several rounds and the median of the rounds is
// reported. Run: npm run bench:read [-- --reads N --rounds R]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Libpmc } from '../src/lib/libpmc.js';
import { LocalModuleClient } from '../src/lib/module-client.js';
import { PerfType } from '../src/md/perf-attr.js';
import { readInto } from '../src/md/native.js';
import { COUNTING_READ_FORMAT, PerfEvent } from '../src/md/perf-event.js';
import { selfCaller } from '../src/module/caller.js';

const C_SOURCE = fileURLToPath(new URL('../../bench/pmcrw_read.c', import.meta.url));

interface Way {
  name: string;
  /** Mean ns per read over `reads` reads. */
  run(reads: number): Promise<number>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function timeLoop(reads: number, body: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reads; i++) await body();
  return Number(process.hrtime.bigint() - t0) / reads;
}

function timeSyncLoop(reads: number, body: () => unknown): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reads; i++) body();
  return Number(process.hrtime.bigint() - t0) / reads;
}

/** The target: `sleep` (off CPU while read) or a shell loop (on the other CPU, so every read interrupts it). */
function startTarget(kind: 'sleeping' | 'spinning'): ChildProcess {
  return kind === 'sleeping' ? spawn('sleep', ['3600'], { stdio: 'ignore' }) : spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
}

async function measure(kind: 'sleeping' | 'spinning', cBench: string, reads: number, rounds: number) {
  const target = startTarget(kind);
  const pid = target.pid!;
  const client = new LocalModuleClient();
  const lib = await Libpmc.init(client);
  try {
    const id = await lib.allocate('task-clock', 'TC');
    await lib.attach(id, pid);
    await lib.start(id);
    const caller = selfCaller();
    const module = client.module;
    const buf = Buffer.alloc(24);
    const raw = PerfEvent.open(
      { type: PerfType.SOFTWARE, config: 1n, readFormat: COUNTING_READ_FORMAT, flags: { pinned: true, inherit: true, inheritThread: true } },
      { pid, cpu: -1 },
    );
    const ways: Way[] = [
      { name: 'C read() on a perf fd', run: async (n) => Number(execFileSync(cBench, [String(pid), String(n)], { encoding: 'utf8' })) },
      { name: 'Libpmc.read (LocalModuleClient)', run: (n) => timeLoop(n, () => lib.read(id)) },
      { name: 'PmcModule.pmcRead', run: async (n) => timeSyncLoop(n, () => module.pmcRead(caller, id)) },
      { name: 'PerfEvent.read (md layer)', run: async (n) => timeSyncLoop(n, () => raw.read()) },
      { name: 'readInto (koffi read() alone)', run: async (n) => timeSyncLoop(n, () => readInto(raw.fd, buf, 24)) },
    ];
    for (const w of ways) await w.run(Math.min(reads, 20_000)); // warm up the JIT and the caches
    const samples = ways.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) for (const [i, w] of ways.entries()) samples[i].push(await w.run(reads));
    raw.close();
    return ways.map((w, i) => ({ way: w.name, median: median(samples[i]), min: Math.min(...samples[i]) }));
  } finally {
    await lib.close();
    target.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reads: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '7' } } });
  const reads = Number(values.reads);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(reads) || reads < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`--reads and --rounds take positive integers (got ${values.reads}, ${values.rounds})`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'pmcrw-read-'));
  try {
    const cBench = path.join(dir, 'pmcrw_read');
    execFileSync('gcc', ['-O2', '-o', cBench, C_SOURCE]);
    console.log(`PMCRW read of a running task-clock PMC: ${rounds} interleaved rounds of ${reads} reads, median ns/read`);
    console.log(`${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)} at the start`);
    for (const kind of ['sleeping', 'spinning'] as const) {
      const rows = await measure(kind, cBench, reads, rounds);
      const c = rows[0].median;
      console.log(`\n${kind} target\n`);
      console.log('| way | median ns/read | min ns/read | x C read() |');
      console.log('| --- | ---: | ---: | ---: |');
      for (const r of rows) console.log(`| ${r.way} | ${r.median.toFixed(0)} | ${r.min.toFixed(0)} | ${(r.median / c).toFixed(2)} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
