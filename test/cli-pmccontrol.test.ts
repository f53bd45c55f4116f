// pmccontrol -L, -l and -s as a user sees them. What the machine has comes
// from the kernel (sysfs, perf list), not from the code under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ok, pmccontrol, tempDir } from './cli-fixture.js';

const env = { TSPMC_ADMIN_STATE: join(tempDir('cli-pmccontrol-'), 'admin.json') };

/** A sysfs CPU list (0-3,5) as numbers. */
function cpuList(path: string): number[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split(',')
    .flatMap((part) => {
      const [lo, hi = lo] = part.split('-').map(Number);
      return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
    });
}

test('-L: SOFT with the kernel\'s software events; HW unavailable with its reason when there is no PMU', (t) => {
  const lines = ok(pmccontrol(['-L'], { env }), 'pmccontrol -L').stdout.split('\n');
  const soft = lines.indexOf('SOFT');
  assert.ok(soft >= 0, 'a SOFT class line');
  const events: string[] = [];
  for (let i = soft + 1; i < lines.length && lines[i].startsWith('\t'); i++) events.push(lines[i].slice(1));
  for (const e of ['cpu-clock', 'task-clock', 'page-faults', 'context-switches']) assert.ok(events.includes(e), `SOFT lists ${e}`);

  const hwPmu = ['cpu', 'cpu_core', 'cpu_atom', 'armv8_pmuv3'].some((d) => existsSync(`/sys/bus/event_source/devices/${d}`));
  const hw = lines.find((l) => l === 'HW' || l.startsWith('HW\t'));
  if (hwPmu) assert.equal(hw, 'HW');
  else assert.match(hw ?? '', /^HW\t\(unavailable: .+\)$/);

  const perf = spawnSync('perf', ['list', 'sw'], { encoding: 'utf8' });
  if (perf.status !== 0) {
    t.skip('perf is not installed: the SOFT list is not compared with it');
    return;
  }
  const perfSoft = perf.stdout
    .split('\n')
    .filter((l) => l.includes('[Software event]'))
    .map((l) => l.trim().split(/\s+/)[0]);
  assert.deepEqual([...events].sort(), [...perfSoft].sort());
});

test('-l: the #CPU n: table with its header line for every online CPU', () => {
  const out = ok(pmccontrol(['-l'], { env }), 'pmccontrol -l').stdout;
  const first = /^(\d+) GENERIC CPUs present, with (\d+) PMCs per CPU$/.exec(out.split('\n')[0]);
  assert.ok(first, out.slice(0, 200));
  const npmc = Number(first[2]);
  assert.equal(Number(first[1]), cpuList('/sys/devices/system/cpu/possible').length);
  const tables = out.split(/^#CPU /m).slice(1);
  assert.deepEqual(
    tables.map((tbl) => Number(tbl.split(':')[0])),
    cpuList('/sys/devices/system/cpu/online'),
  );
  for (const tbl of tables) {
    const lines = tbl.trimEnd().split('\n');
    assert.equal(lines[1], '#N  NAME             CLASS  STATE    ROW-DISP');
    const rows = lines.slice(2);
    assert.equal(rows.length, npmc);
    rows.forEach((r, n) => assert.match(r, new RegExp(`^ ${n}\\s+\\S+\\s+\\S+\\s+(ENABLED|DISABLED)\\s+(FREE|THREAD|STANDALONE)\\b`)));
  }
});

test('-s: the ten driver statistics, labelled, with counts', () => {
  const lines = ok(pmccontrol(['-s'], { env }), 'pmccontrol -s').stdout.trimEnd().split('\n');
  assert.deepEqual(
    lines.map((l) => l.replace(/\s+\d+$/, '')),
    [
      'interrupts processed:',
      'non-PMC interrupts:',
      'sampling stalls due to space shortages:',
      'system calls:',
      'system calls with errors:',
      'buffer requests:',
      'buffer requests failed:',
      'sampling log sweeps:',
      'log records never written:',
      'samples lost by the kernel:',
    ],
  );
  for (const l of lines) assert.match(l, /^.{40} \d+$/);
});
