// PMCRW read cost: one read of a running process-mode task-clock PMC through
// each layer of tspmc, against a C loop calling read() on an equivalent perf
// fd in the same run; and one read of a group of counters (PERF_FORMAT_GROUP)
// in C and in JavaScript, and through the module: PMCREADMANY of that many
// task-clock PMCs, which share one perf group. Every way reads counters of the same
// single-threaded target; the ways take turns (in a rotating order) for
// several rounds, and the medians and ranges of the rounds are reported.
// Each loop is timed by the wall clock and by the reading thread's own CPU
// time: on a shared machine the second leaves out the time other processes
// had the CPU, which is what makes wall-clock rounds jump.
// Raw results: bench/results/pmcrw-read-<date>T<hhmm>.json.
// Run: npm run bench:read [-- --reads N --rounds R --group K --out FILE]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Libpmc } from '../src/lib/libpmc.js';
import { LocalModuleClient } from '../src/lib/module-client.js';
import { PerfFormat, PerfType } from '../src/md/perf-attr.js';
import { allocNative, readNative } from '../src/md/native.js';
import { COUNTING_READ_FORMAT, PerfEvent } from '../src/md/perf-event.js';
import { selfCaller } from '../src/module/caller.js';
import { PmcFlags, PmcOp } from '../src/module/pmc-types.js';
import { median } from './median.js';

const C_SOURCE = fileURLToPath(new URL('../../bench/pmcrw_read.c', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));

// read(2) through koffi into a Buffer: how the md layer read before it read into native memory.
const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
const koffiRead = koffi.load('libc.so.6').func('long read(int fd, void *buf, unsigned long count)');

/** Mean ns per read over a loop: wall clock, and the reading thread's CPU time. */
interface Timing {
  wall: number;
  cpu: number;
}

interface Way {
  name: string;
  run(reads: number): Promise<Timing>;
}

/** This thread's time on a CPU in ns (schedstat's first field; the C side uses CLOCK_THREAD_CPUTIME_ID). */
function threadCpuNs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]);
}

function timing(reads: number, t0: bigint, c0: number): Timing {
  const cpu = threadCpuNs();
  return { wall: Number(process.hrtime.bigint() - t0) / reads, cpu: (cpu - c0) / reads };
}

async function timeLoop(reads: number, body: () => Promise<unknown>): Promise<Timing> {
  const c0 = threadCpuNs();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reads; i++) await body();
  return timing(reads, t0, c0);
}

function timeSyncLoop(reads: number, body: () => unknown): Timing {
  const c0 = threadCpuNs();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reads; i++) body();
  return timing(reads, t0, c0);
}

/** The target: `sleep` (off CPU while read) or a shell loop (on the other CPU, so every read interrupts it). */
function startTarget(kind: 'sleeping' | 'spinning'): ChildProcess {
  return kind === 'sleeping' ? spawn('sleep', ['3600'], { stdio: 'ignore' }) : spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
}

/** A task-clock counter on `pid` with the attributes the module uses (pinned, inherited by new threads). */
function openCounter(pid: number, readFormat = COUNTING_READ_FORMAT, groupFd?: number): PerfEvent {
  return PerfEvent.open(
    { type: PerfType.SOFTWARE, config: 1n, readFormat, flags: { pinned: groupFd === undefined, inherit: true, inheritThread: true } },
    { pid, cpu: -1, groupFd },
  );
}

async function measure(kind: 'sleeping' | 'spinning', cBench: string, reads: number, rounds: number, group: number) {
  const target = startTarget(kind);
  const pid = target.pid!;
  const client = new LocalModuleClient();
  const lib = await Libpmc.init(client);
  const opened: PerfEvent[] = [];
  try {
    const id = await lib.allocate('task-clock', 'TC');
    await lib.attach(id, pid);
    await lib.start(id);
    // `group` more task-clock PMCs on the target: the module puts their counters in one perf group.
    const groupIds: number[] = [];
    for (let i = 0; i < group; i++) groupIds.push(await lib.allocate('task-clock', 'TC'));
    for (const g of groupIds) {
      await lib.attach(g, pid);
      await lib.start(g);
    }
    const manyArgs = { ids: groupIds };
    const caller = selfCaller();
    const module = client.module;
    const readArgs = { id, flags: PmcFlags.OLDVALUE };
    const single = openCounter(pid);
    opened.push(single);
    single.enable();
    // A group: a pinned leader, the others its members, read in one read(2).
    const groupFormat = PerfFormat.GROUP | COUNTING_READ_FORMAT;
    const leader = openCounter(pid, groupFormat);
    opened.push(leader);
    for (let i = 1; i < group; i++) opened.push(openCounter(pid, groupFormat, leader.fd));
    for (const ev of opened.slice(1)) ev.enable();
    const buf = Buffer.alloc(24);
    const native = allocNative(24);
    const groupNative = allocNative(8 * (3 + group));
    const groupBuf = Buffer.alloc(8 * (3 + group));
    const c = (extra: string[]) => async (n: number): Promise<Timing> => {
      const [wall, cpu] = execFileSync(cBench, [String(pid), String(n), ...extra], { encoding: 'utf8' }).trim().split(' ').map(Number);
      return { wall: wall!, cpu: cpu! };
    };
    const ways: Way[] = [
      { name: 'C read() on a perf fd', run: c([]) },
      { name: 'Libpmc.read (LocalModuleClient)', run: (n) => timeLoop(n, () => lib.read(id)) },
      { name: 'PmcModule.call(PMCRW)', run: async (n) => timeSyncLoop(n, () => module.call(caller, PmcOp.PMCRW, readArgs)) },
      { name: 'PmcModule.pmcRead', run: async (n) => timeSyncLoop(n, () => module.pmcRead(caller, id)) },
      { name: 'PerfEvent.readValue (md layer)', run: async (n) => timeSyncLoop(n, () => single.readValue()) },
      { name: 'read() to native memory alone (koffi)', run: async (n) => timeSyncLoop(n, () => readNative(single.fd, native, 24)) },
      { name: 'fs.readSync into a Buffer alone', run: async (n) => timeSyncLoop(n, () => readSync(single.fd, buf, 0, 24, null)) },
      { name: 'koffi read() into a Buffer alone', run: async (n) => timeSyncLoop(n, () => koffiRead(single.fd, buf, 24)) },
      { name: `C read() of a group of ${group}`, run: c([String(group)]) },
      { name: `Libpmc.readMany of a group of ${group} PMCs`, run: (n) => timeLoop(n, () => lib.readMany(groupIds)) },
      { name: `PmcModule.call(PMCREADMANY) of a group of ${group} PMCs`, run: async (n) => timeSyncLoop(n, () => module.call(caller, PmcOp.PMCREADMANY, manyArgs)) },
      { name: `PerfEvent.readRaw of a group of ${group}`, run: async (n) => timeSyncLoop(n, () => leader.readRaw(groupBuf)) },
      { name: `read() of a group of ${group} to native memory alone`, run: async (n) => timeSyncLoop(n, () => readNative(leader.fd, groupNative, groupNative.buffer.byteLength)) },
    ];
    for (const w of ways) await w.run(Math.min(reads, 20_000)); // warm up the JIT and the caches
    const samples = ways.map(() => [] as Timing[]);
    for (let r = 0; r < rounds; r++) {
      // Rotate who goes first, so that no way always follows the same one.
      for (let k = 0; k < ways.length; k++) {
        const i = (k + r) % ways.length;
        samples[i]!.push(await ways[i]!.run(reads));
      }
    }
    return ways.map((w, i) => ({ way: w.name, wall: samples[i]!.map((t) => t.wall), cpu: samples[i]!.map((t) => t.cpu) }));
  } finally {
    for (const ev of opened) ev.close();
    await lib.close();
    target.kill('SIGKILL');
  }
}

function cpuModel(): string {
  return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reads: { type: 'string', default: '50000' },
      rounds: { type: 'string', default: '9' },
      group: { type: 'string', default: '4' },
      out: { type: 'string' },
    },
  });
  const reads = Number(values.reads);
  const rounds = Number(values.rounds);
  const group = Number(values.group);
  if (![reads, rounds, group].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error(`--reads, --rounds and --group take positive integers (got ${values.reads}, ${values.rounds}, ${values.group})`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'pmcrw-read-'));
  try {
    const cBench = path.join(dir, 'pmcrw_read');
    execFileSync('gcc', ['-O2', '-o', cBench, C_SOURCE]);
    const startLoad = loadavg();
    console.log(`PMCRW read of a running task-clock PMC: ${rounds} interleaved rounds of ${reads} reads, ns/read`);
    console.log(`${cpus().length} CPUs (${cpuModel()}), Linux ${release()}, Node ${process.version}, load average ${startLoad[0].toFixed(2)} at the start`);
    const results: Record<string, { way: string; wall: number[]; cpu: number[] }[]> = {};
    const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}`;
    for (const kind of ['sleeping', 'spinning'] as const) {
      const rows = await measure(kind, cBench, reads, rounds, group);
      results[kind] = rows;
      for (const clock of ['cpu', 'wall'] as const) {
        const c = rows[0]![clock];
        console.log(`\n${kind} target, ${clock === 'cpu' ? "the reading thread's CPU time" : 'wall clock'}\n`);
        console.log('| way | median ns/read | range | x C read() (medians) | x C read() (per round: median, range) |');
        console.log('| --- | ---: | ---: | ---: | ---: |');
        for (const r of rows) {
          // Each round's ratio to the C loop that ran next to it: less sensitive to the load changing between rounds.
          const ns = r[clock];
          const ratios = ns.map((v, i) => v / c[i]!);
          console.log(
            `| ${r.way} | ${median(ns).toFixed(0)} | ${range(ns, 0)} | ${(median(ns) / median(c)).toFixed(2)} | ${median(ratios).toFixed(2)} (${range(ratios, 2)}) |`,
          );
        }
        // One read for a whole group: what each of its counters costs, against one C read() per counter.
        const perCounter = rows.filter((r) => r.way.includes('group')).map((r) => `${r.way}: ${(median(r[clock]) / group).toFixed(0)} ns (${(median(r[clock]) / group / median(c)).toFixed(2)}x)`);
        console.log(`\nper counter of the group: ${perCounter.join('; ')}`);
      }
    }
    const out = values.out ?? path.join(RESULTS, `pmcrw-read-${new Date().toISOString().slice(0, 16).replace(':', '')}.json`);
    mkdirSync(path.dirname(out), { recursive: true });
    const machine = { cpus: cpus().length, model: cpuModel(), kernel: release(), node: process.version };
    writeFileSync(out, `${JSON.stringify({ command: `npm run bench:read -- --reads ${reads} --rounds ${rounds} --group ${group}`, date: new Date().toISOString(), machine, loadavg: { start: startLoad, end: loadavg() }, reads, rounds, group, results }, null, 1)}\n`);
    console.log(`\nraw results: ${path.relative(process.cwd(), out)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
