// A PMCRW read through pmcd, against the same read in process and against
// an empty request-reply on the same socket (PING: framing, JSON, the Unix
// socket and both event loops, without the module): the transport's floor.
// One pmcd (on a temporary socket), one sleeping target, one task-clock PMC
// per way; the ways take turns for several rounds, each round timing a loop
// of sequential awaited calls. Medians and ranges of the rounds' mean
// microseconds per call; raw results in bench/results/pmcd-read-<date>T<hhmm>.json.
// Run: npm run bench:pmcd [-- --calls N --rounds R --out FILE]
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Libpmc } from '../src/lib/libpmc.js';
import { LocalModuleClient } from '../src/lib/module-client.js';
import { PmcdClient } from '../src/lib/pmcd-client.js';
import { median } from './median.js';

const PMCD = fileURLToPath(new URL('../bin/pmcd.cjs', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));

interface Way {
  name: string;
  call: () => Promise<unknown>;
}

async function timeLoop(n: number, call: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await call();
  return Number(process.hrtime.bigint() - t0) / n / 1000;
}

async function startPmcd(dir: string): Promise<{ child: ChildProcess; socket: string }> {
  const socket = path.join(dir, 'pmcd.sock');
  const env = { PATH: process.env.PATH, TSPMC_ADMIN_STATE: path.join(dir, 'admin.json'), TSPMC_CONFIG: path.join(dir, 'none.conf') };
  const child = spawn(process.execPath, [PMCD, '--socket', socket], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: string) => {
      err += d;
      if (err.includes('pmcd: serving')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`pmcd exited (${code}): ${err}`)));
  });
  return { child, socket };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { calls: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '11' }, out: { type: 'string' } } });
  const calls = Number(values.calls);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(calls) || calls < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`--calls and --rounds take positive integers (got ${values.calls}, ${values.rounds})`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'pmcd-read-'));
  const target = spawn('sleep', ['3600'], { stdio: 'ignore' });
  const pmcd = await startPmcd(dir);
  const remote = await PmcdClient.connect(pmcd.socket);
  const overSocket = await Libpmc.init(remote);
  const inProcess = await Libpmc.init(new LocalModuleClient());
  try {
    const remoteId = await overSocket.allocate('task-clock', 'TC');
    const localId = await inProcess.allocate('task-clock', 'TC');
    for (const [lib, id] of [[overSocket, remoteId], [inProcess, localId]] as const) {
      await lib.attach(id, target.pid!);
      await lib.start(id);
    }
    const ways: Way[] = [
      { name: 'PMCRW read through pmcd (Libpmc.read, PmcdClient)', call: () => overSocket.read(remoteId) },
      { name: 'PMCRW read in process (Libpmc.read, LocalModuleClient)', call: () => inProcess.read(localId) },
      { name: 'empty request-reply on the same socket (PING)', call: () => remote.ping() },
    ];
    for (const w of ways) await timeLoop(Math.min(calls, 2000), w.call); // warm up
    const samples = ways.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      // Rotate the order so no way always runs right after another.
      for (let k = 0; k < ways.length; k++) {
        const i = (r + k) % ways.length;
        samples[i].push(await timeLoop(calls, ways[i].call));
      }
    }
    const rows = ways.map((w, i) => ({ way: w.name, medianUs: median(samples[i]), minUs: Math.min(...samples[i]), maxUs: Math.max(...samples[i]), roundsUs: samples[i] }));
    const ping = rows[2].medianUs;
    console.log(`PMCRW read through pmcd vs in process vs PING: ${rounds} rotating rounds of ${calls} sequential calls`);
    console.log(`${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)} at the end\n`);
    console.log('| way | median µs/call | range µs/call | x PING |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const r of rows) console.log(`| ${r.way} | ${r.medianUs.toFixed(2)} | ${r.minUs.toFixed(2)}–${r.maxUs.toFixed(2)} | ${(r.medianUs / ping).toFixed(2)} |`);
    const ratio = rows[0].medianUs / ping;
    console.log(`\npmcd read / empty round trip: ${ratio.toFixed(2)} (target: at most 1.5)`);
    const stamp = new Date().toISOString().slice(0, 16).replace(':', '');
    const out = values.out ?? path.join(RESULTS, `pmcd-read-${stamp}.json`);
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(
      out,
      JSON.stringify({ bench: 'pmcd-read', command: `npm run bench:pmcd -- --calls ${calls} --rounds ${rounds}`, date: new Date().toISOString(), kernel: release(), node: process.version, cpus: cpus().length, loadavgEnd: loadavg(), calls, rounds, ratioReadToPing: ratio, rows }, null, 2) + '\n',
    );
    console.log(`raw results: ${path.relative(process.cwd(), out)}`);
  } finally {
    await overSocket.close();
    await inProcess.close();
    const exited = once(pmcd.child, 'exit');
    pmcd.child.kill('SIGTERM');
    await exited;
    target.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
