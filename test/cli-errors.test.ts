// Bad input through the real command lines: each mistake gives one line on
// stderr naming the input (and the errno name where there is one), plus
// the `try ... --help` line for usage errors; exit status 2 for usage
// errors, 1 for errors at run time; never a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { pmccontrol, pmcstat, type RunOptions, stackTraceLines, tempDir, type ToolRun } from './cli-fixture.js';

// pmccontrol -d/-e persist row states: keep this file's runs away from the machine's.
// The directory is searchable by all, as /run/tspmc is: an unreadable state file is an error.
const adminDir = tempDir('cli-errors-');
chmodSync(adminDir, 0o755);
const env = { TSPMC_ADMIN_STATE: join(adminDir, 'admin.json') };
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
];

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
