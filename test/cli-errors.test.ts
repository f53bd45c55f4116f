// Bad input through the real command lines: each mistake gives one line on
// stderr naming the input (and the errno name where there is one), plus
// the `try ... --help` line for usage errors; exit status 2 for usage
// errors, 1 for errors at run time; never a stack trace.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildC, pmccontrol, pmcstat, type RunOptions, stackTraceLines, tempDir, type ToolRun } from './cli-fixture.js';

// pmccontrol -d/-e persist row states: keep this file's runs away from the machine's.
// The directory is searchable by all, as /run/tspmc is: an unreadable state file is an error.
const dir = tempDir('cli-errors-');
chmodSync(dir, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));
const env = { TSPMC_ADMIN_STATE: join(dir, 'admin.json') };
const maxSampleRate = existsSync('/proc/sys/kernel/perf_event_max_sample_rate') ? readFileSync('/proc/sys/kernel/perf_event_max_sample_rate', 'latin1').trim() : undefined;
const NOBODY = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];
const canDropPrivileges = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

interface Expected {
  /** Text of the input the message must name. */
  input: string | RegExp;
  /** Errno name the line must carry, once. */
  errno?: string;
  usage?: boolean;
}

function assertOneLineError(tool: 'pmcstat' | 'pmccontrol', r: ToolRun, e: Expected): void {
  const detail = `exit ${r.status}, stderr:\n${r.stderr}`;
  assert.deepEqual(stackTraceLines(r.stderr), [], detail);
  assert.equal(r.stdout, '', detail);
  const lines = r.stderr.trimEnd().split('\n');
  if (e.usage) {
    assert.equal(r.status, 2, detail);
    assert.equal(lines.length, 2, detail);
    assert.equal(lines[1], `${tool}: try '${tool} --help'`);
  } else {
    assert.equal(r.status, 1, detail);
    assert.equal(lines.length, 1, detail);
  }
  assert.ok(lines[0].startsWith(`${tool}: `), detail);
  if (typeof e.input === 'string') assert.ok(lines[0].includes(e.input), `names "${e.input}": ${detail}`);
  else assert.match(lines[0], e.input, detail);
  if (e.errno) assert.equal(lines[0].split(`(${e.errno})`).length - 1, 1, `names ${e.errno} once: ${detail}`);
}

const pmcstatCases: [string, string[], Expected, RunOptions?][] = [
  ['unknown event', ['-p', 'no-such-event', '--', 'true'], { input: '"no-such-event"', errno: 'ENOENT' }],
  ['unknown qualifier', ['-p', 'task-clock,bogus', '--', 'true'], { input: 'task-clock,bogus', errno: 'EINVAL' }],
  ['PMU spec without terms', ['-p', 'msr/', '--', 'true'], { input: '"msr/"', errno: 'EINVAL' }],
  ['missing pid', ['-t', '999999', '-p', 'task-clock'], { input: '999999', errno: 'ESRCH' }],
  ['command not found', ['-p', 'task-clock', '--', 'no-such-command-here'], { input: 'no-such-command-here', errno: 'ENOENT' }],
  ['non-numeric interval', ['-w', 'abc', '-p', 'task-clock', '--', 'true'], { input: '"abc"', usage: true }],
  ['negative CPU', ['-c', '-1', '-s', 'cpu-clock', '-l', '0.1'], { input: '-1', usage: true }],
  ['absent CPU', ['-c', '99', '-s', 'cpu-clock', '-l', '0.1'], { input: '99', errno: 'EINVAL' }],
  ['-n beyond 64 bits', ['-n', '99999999999999999999999', '-P', 'cpu-clock', '--', 'true'], { input: /option -n: 99999999999999999999999 .*2\^63 - 1/, usage: true }],
  ['-n with bit 63 set', ['-n', '9223372036854775808', '-P', 'cpu-clock', '--', 'true'], { input: /option -n: 9223372036854775808 .*9223372036854775807/, usage: true }],
  ['empty CPU list', ['-c', '', '-s', 'cpu-clock', '-l', '0.1'], { input: /option -c: .*empty/, usage: true }],
  ['empty target', ['-t', '', '-p', 'task-clock'], { input: /option -t: .*empty/, usage: true }],
  ['empty event', ['-p', '', '--', 'true'], { input: /option -p: .*empty/, usage: true }],
  ['command is a directory', ['-p', 'task-clock', '--', '/usr'], { input: '"/usr" is a directory', errno: 'EACCES' }],
  ['-o in a missing directory', ['-o', '/nonexistent-dir/counts', '-p', 'task-clock', '--', 'true'], { input: '-o /nonexistent-dir/counts', errno: 'ENOENT' }],
  ['-o a directory', ['-o', tmpdir(), '-p', 'task-clock', '--', 'true'], { input: `-o ${tmpdir()}`, errno: 'EISDIR' }],
  ['-o /dev/full', ['-o', '/dev/full', '-p', 'task-clock', '--', 'true'], { input: '-o /dev/full', errno: 'ENOSPC' }],
  ['-O /dev/full', ['-O', '/dev/full', '-P', 'cpu-clock', '--', 'true'], { input: '-O /dev/full', errno: 'ENOSPC' }],
  ['-R of a missing log', ['-R', 'no-such-log', '--stats', '--json'], { input: '"no-such-log"', errno: 'ENOENT' }],
  ['-R of a directory', ['-R', tmpdir(), '--stats'], { input: `"${tmpdir()}"`, errno: 'EISDIR' }],
  ['-R with -o a directory', ['-R', '/dev/null', '-o', tmpdir()], { input: `-o ${tmpdir()}`, errno: 'EISDIR' }],
];

if (maxSampleRate !== undefined) {
  pmcstatCases.push([
    '--freq above the kernel\'s limit',
    ['--freq', '1000000000', '-P', 'cpu-clock', '--', 'true'],
    { input: new RegExp(`option --freq: 1000000000 .*${maxSampleRate}.*/proc/sys/kernel/perf_event_max_sample_rate`), usage: true },
  ]);
}

for (const [what, args, expected] of pmcstatCases) {
  test(`pmcstat, ${what}: pmcstat ${args.join(' ')}`, () => {
    if (what === 'missing pid') assert.ok(!existsSync('/proc/999999'), 'pid 999999 must not exist');
    if (what === 'absent CPU') assert.ok(cpus().length < 99, 'CPU 99 must not exist');
    assertOneLineError('pmcstat', pmcstat(args, { env }), expected);
  });
}

const unprivileged = { skip: !canDropPrivileges && 'needs root and setpriv' };

test('pmcstat -s cpu-clock as an unprivileged user is EPERM', unprivileged, () => {
  assertOneLineError('pmcstat', pmcstat(['-s', 'cpu-clock', '-l', '0.1'], { env, prefix: NOBODY }), { input: 'cpu-clock', errno: 'EPERM' });
});

test('pmcstat -t 1 as an unprivileged user is EPERM', unprivileged, () => {
  assertOneLineError('pmcstat', pmcstat(['-t', '1', '-p', 'task-clock'], { env, prefix: NOBODY }), { input: /\b(process|pid) 1\b/, errno: 'EPERM' });
});

const pmccontrolCases: [string, string[], Expected][] = [
  ['non-numeric CPU', ['-c', 'abc', '-d', '0'], { input: '"abc"', usage: true }],
  ['negative CPU', ['-c', '-1', '-d', '0'], { input: '-1', usage: true }],
  ['absent row', ['-d', '999'], { input: '999', usage: true }],
  ['unknown option', ['-x'], { input: "'-x'", usage: true }],
];

for (const [what, args, expected] of pmccontrolCases) {
  test(`pmccontrol, ${what}: pmccontrol ${args.join(' ')}`, () => {
    assertOneLineError('pmccontrol', pmccontrol(args, { env }), expected);
  });
}

test('pmccontrol -d 0 as an unprivileged user is EPERM', unprivileged, () => {
  assertOneLineError('pmccontrol', pmccontrol(['-d', '0'], { env, prefix: NOBODY }), { input: /PMC 0\b/, errno: 'EPERM' });
});

test('-o or -O that cannot be written: the command never runs', () => {
  const marker = join(dir, 'ran');
  for (const args of [['-o', '/dev/full', '-p', 'task-clock'], ['-O', '/dev/full', '-P', 'cpu-clock'], ['-o', '/nonexistent-dir/x', '-p', 'task-clock']]) {
    const r = pmcstat([...args, '--', 'touch', marker], { env });
    assert.equal(r.status, 1, r.stderr);
    assert.ok(!existsSync(marker), `${args.join(' ')}: the command did not run`);
  }
});

test('-O a pipe whose reader goes away mid-run: one line naming -O and EPIPE, once', async () => {
  const fifo = join(dir, 'log.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  // The reader takes the log's first 100 bytes and leaves; every later write fails.
  const reader = spawn('head', ['-c', '100', fifo], { stdio: 'ignore' });
  try {
    const r = pmcstat(['-O', fifo, '-P', 'cpu-clock', '--', 'sh', '-c', 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'], { env, timeoutMs: 120_000 });
    assertOneLineError('pmcstat', r, { input: `-O ${fifo}: cannot write the log`, errno: 'EPIPE' });
    assert.doesNotMatch(r.stderr, /\(EIO\)/, 'the write error is not wrapped in EIO');
  } finally {
    reader.kill();
  }
});

test('-o a file the user may not write, as an unprivileged user: EACCES, before anything runs', unprivileged, () => {
  const readOnly = join(dir, 'read-only');
  writeFileSync(readOnly, '');
  chmodSync(readOnly, 0o444);
  const marker = join(dir, 'ran-unprivileged');
  for (const out of [readOnly, join(dir, 'not-allowed-here')]) {
    const r = pmcstat(['-o', out, '-p', 'task-clock', '--', 'touch', marker], { env, prefix: NOBODY });
    assertOneLineError('pmcstat', r, { input: `-o ${out}`, errno: 'EACCES' });
    assert.ok(!existsSync(marker), 'the command did not run');
  }
});

const paranoid = existsSync('/proc/sys/kernel/perf_event_paranoid') ? Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'latin1')) : undefined;
test('pmcstat -p page-faults,os as an unprivileged user names perf_event_paranoid', { skip: (!canDropPrivileges && 'needs root and setpriv') || (!(paranoid !== undefined && paranoid >= 2) && 'perf_event_paranoid < 2 allows it') }, () => {
  const r = pmcstat(['-p', 'page-faults,os', '--', 'true'], { env, prefix: NOBODY });
  // Refused by the module (EPERM) or by the kernel (EACCES): either way the kernel's setting is named.
  assertOneLineError('pmcstat', r, { input: new RegExp(`page-faults,os.*perf_event_paranoid is ${paranoid}.*\\((EPERM|EACCES)\\)$`) });
});

// A disk that fills during the recording: a 128 KiB tmpfs in a mount namespace of the run's own
// (gone with it), the log copied out of it before it goes.
const noMountNamespace =
  process.getuid?.() !== 0 ? 'needs root (mount)' : spawnSync('unshare', ['-m', 'mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).status !== 0 && 'a tmpfs cannot be mounted in a new mount namespace here (unshare -m)';

test('-O on a disk that fills during the run: the error once, with its errno; status 1, not the command\'s; the counts and the samples logged before are kept', { skip: noMountNamespace }, () => {
  const mnt = join(dir, 'small-disk');
  mkdirSync(mnt);
  const prog = buildC(dir, 'sampling-hotcold.c', 'hotcold');
  const script = 'mount -t tmpfs -o size=128k tmpfs "$0" || exit 99; "$@"; s=$?; cp "$0"/full.pmclog "$0".log; exit $s';
  // About a second of CPU at 100 us per sample: far more log than 128 KiB. The command (a shell
  // and its child, -d) exits with 7: a run whose log is lost fails whatever its command's status.
  const command = ['sh', '-c', '"$0" "$@"; exit 7', prog, '20', '50000000', '20000000'];
  const r = pmcstat(['-d', '-p', 'task-clock', '-n', '100000', '-P', 'cpu-clock', '-O', join(mnt, 'full.pmclog'), '--', ...command], {
    env,
    prefix: ['unshare', '-m', 'sh', '-c', script, mnt],
  });
  const detail = `exit ${r.status}, stderr:\n${r.stderr}`;
  assert.equal(r.status, 1, detail);
  assert.deepEqual(stackTraceLines(r.stderr), [], detail);
  const errors = r.stderr.split('\n').filter((l) => /error/i.test(l));
  assert.deepEqual(errors, [`pmcstat: ERROR: -O ${join(mnt, 'full.pmclog')}: cannot write the log: no space left on device (ENOSPC)`], detail);
  // The count, taken to the end of the command: the header and the value of task-clock (ns of CPU, well over 100 ms).
  const lines = r.stderr.split('\n');
  const header = lines.findIndex((l) => /^#\s+p\/task-clock$/.test(l));
  assert.ok(header >= 0, detail);
  const value = lines.slice(header + 1).find((l) => /^\s+\d+$/.test(l));
  assert.ok(value !== undefined && Number(value) > 100e6, detail);
  // What reached the disk is a log: its samples read back (a log cut short, said as such).
  const stats = pmcstat(['-R', `${mnt}.log`, '--stats', '--json'], { env: { ...env, TSPMC_CACHE_DIR: '' } });
  assert.ok(JSON.parse(stats.stdout).samples > 0, stats.stdout + stats.stderr);
});
