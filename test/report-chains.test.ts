// Identical samples are counted before they are symbolized
// (report/chain-table.ts): the outputs must be those of symbolizing every
// sample (what the analysis does when it keeps every sample, for -m and -a),
// across execs, mappings that arrive between samples, kernel frames,
// several PMCs and threads, and a table that fills up.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeLog } from '../src/report/analyze.js';
import { formatCallgraph } from '../src/report/write-callgraph.js';
import { formatFolded } from '../src/report/write-folded.js';
import { formatStats } from '../src/report/write-stats.js';
import type { LogRecord } from '../src/log/records.js';
import { buildProgram, pcIn, rec, retIn, tempDir, text } from './report-fixture.js';

const dir = tempDir('tspmc-report-chains-');
after(() => rmSync(dir, { recursive: true, force: true }));
const prog = buildProgram(dir, 'prog', ['-pie', '-fPIE']);
const kallsyms = join(dir, 'kallsyms');
writeFileSync(kallsyms, ['ffffffff81000000 T _stext', 'ffffffff81000100 t irq_handler', 'ffffffff81000200 T do_syscall_64', ''].join('\n'));
const BASE = 0x5555_5555_4000n;
const OTHER = 0x7000_0000_0000n;

/** A log where the same few chains repeat, interleaved with records that change what they resolve to. */
function records(distinct: number): LogRecord[] {
  const r: LogRecord[] = [rec.allocDyn(0x100, 'cpu-clock'), rec.allocDyn(0x200, 'page-faults'), rec.exec(10, prog.path), rec.mapIn(10, BASE, prog.path), rec.mapIn(-1, 0xffffffff81000000n, '[kernel.kallsyms]')];
  const user = (base: bigint, i: number): bigint[] => [pcIn(prog, base, i % 2 ? 'inner' : 'outer', 1 + (i % distinct)), retIn(prog, base, 'main')];
  for (let i = 0; i < 300; i++) {
    const pid = 10 + (i % 3);
    const pcs = i % 5 === 0 ? [0xffffffff81000150n + BigInt(i % distinct), 0xffffffff81000210n, ...user(BASE, i)] : user(BASE, i);
    r.push({ ...rec.callchain(pid, i % 7 ? 0x100 : 0x200, pcs, i % 5 !== 0), tid: pid * 100 + (i % 2) });
    // Process 11 forks from 10 and maps the program again elsewhere (its own copy of the space from then on).
    if (i === 50) r.push(rec.fork(10, 11), rec.mapIn(11, OTHER, prog.path));
    if (i === 150) r.push(rec.exec(12, prog.path + '-again'), rec.mapIn(12, OTHER, prog.path));
  }
  return r;
}

async function outputs(recs: LogRecord[], keepSamples: boolean): Promise<string> {
  const result = await analyzeLog(recs, { keepSamples, kallsyms });
  return [text(formatCallgraph(result)), text(formatFolded(result)), text(formatFolded(result, { pmc: 'page-faults' })), text(formatStats(result))].join('\n--\n');
}

test('counting identical chains first gives the outputs of symbolizing every sample', async () => {
  for (const distinct of [3, 97]) {
    const recs = records(distinct);
    const counted = await outputs(recs, false);
    assert.equal(counted, await outputs(recs, true), `${distinct} distinct PCs`);
    assert.match(counted, /irq_handler_\[k\];do_syscall_64_\[k\]|do_syscall_64_\[k\];irq_handler_\[k\]/, 'kernel frames resolved');
    assert.match(counted, /prog-again;/, 'the exec renamed process 12');
  }
});

test('a table that fills up is drained and counting goes on', async () => {
  // 70,000 distinct chains (more than the table holds), each seen twice, apart.
  const r: LogRecord[] = [rec.allocDyn(0x100, 'cpu-clock')];
  for (let round = 0; round < 2; round++) for (let i = 0; i < 70_000; i++) r.push(rec.callchain(20, 0x100, [0x1000_0000n + BigInt(16 * i), 0x2000_0000n]));
  const result = await analyzeLog(r, { kallsyms });
  const lines = text(formatFolded(result)).trimEnd().split('\n');
  assert.equal(lines.length, 70_000);
  assert.ok(lines.every((l) => l.endsWith(' 2')), 'every chain counted twice');
  assert.equal(result.stats.samples, 140_000);
});
