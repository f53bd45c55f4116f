// Boot-time tunables: config file, environment override, and pmc_initialize()'s
// range checks (a message and the default; an oversized call chain depth
// becomes the maximum).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfCaller } from '../src/module/caller.js';
import { PmcClass, PmcFlags, PmcMode } from '../src/module/pmc-types.js';
import { DEFAULT_CONFIG_FILE, DEFAULT_TUNABLES, loadTunables, type Tunables } from '../src/module/tunables.js';
import { PMC_CALLCHAIN_DEPTH_MAX } from '../src/pmc-common.js';
import { FakeClass, fakeModule } from './fake-class.js';

let dir = '';
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tunables-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function configFile(text: string): string {
  const file = path.join(dir, `tspmc-${files++}.conf`);
  writeFileSync(file, text);
  return file;
}

/** Loads with only the given file and environment; returns the tunables and every warning. */
function load(config: string, env: NodeJS.ProcessEnv = {}): { t: Tunables; warnings: string[] } {
  const warnings: string[] = [];
  const t = loadTunables({ configFile: configFile(config), env, warn: (m) => warnings.push(m) });
  return { t, warnings };
}

test('an empty config and environment give the defaults, silently', () => {
  const { t, warnings } = load('');
  assert.deepEqual(t, DEFAULT_TUNABLES);
  assert.deepEqual(warnings, []);
});

test('the config file sets tunables by sysctl name or bare name, with comments and quotes', () => {
  const { t, warnings } = load(
    [
      '# hwpmc tunables',
      'kern.hwpmc.nsamples = 1024',
      'callchaindepth=64   # deep enough',
      '',
      'kern.hwpmc.logbuffersize="8"',
      'kern.hwpmc.nbuffers = 16',
      'security.bsd.unprivileged_syspmcs = 1',
      'kern.hwpmc.unprivileged_kernel_callchains = 1',
      'kern.hwpmc.unknown = 5',
    ].join('\n'),
  );
  assert.deepEqual(t, { nsamples: 1024, callchaindepth: 64, logbuffersize: 8, nbuffers: 16, unprivileged_syspmcs: true, unprivileged_kernel_callchains: true });
  assert.deepEqual(warnings, []);
});

test('the environment overrides the config file', () => {
  const { t } = load('kern.hwpmc.nsamples = 1024\nsecurity.bsd.unprivileged_syspmcs = 1\n', {
    TSPMC_NSAMPLES: '2048',
    TSPMC_UNPRIVILEGED_SYSPMCS: '0',
    TSPMC_CALLCHAINDEPTH: '32',
  });
  assert.equal(t.nsamples, 2048);
  assert.equal(t.unprivileged_syspmcs, false);
  assert.equal(t.callchaindepth, 32);
});

test('TSPMC_CONFIG names the config file; an unreadable one is reported', () => {
  const file = configFile('kern.hwpmc.nbuffers = 7\n');
  assert.equal(loadTunables({ env: { TSPMC_CONFIG: file }, warn: assert.fail }).nbuffers, 7);
  const warnings: string[] = [];
  const missing = path.join(dir, 'absent.conf');
  const t = loadTunables({ env: { TSPMC_CONFIG: missing }, warn: (m) => warnings.push(m) });
  assert.deepEqual(t, DEFAULT_TUNABLES);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`cannot read config file ${missing}`));
});

test('a missing default config file is no error', { skip: existsSync(DEFAULT_CONFIG_FILE) && `${DEFAULT_CONFIG_FILE} exists here` }, () => {
  assert.deepEqual(loadTunables({ env: {}, warn: assert.fail }), DEFAULT_TUNABLES);
});

test('out-of-range values get a message naming the source and the default', () => {
  const cases: [string, keyof Tunables, string][] = [
    ['kern.hwpmc.nsamples = 0', 'nsamples', 'out of range [1, 65535]'],
    ['kern.hwpmc.nsamples = 65536', 'nsamples', 'out of range [1, 65535]'],
    ['kern.hwpmc.logbuffersize = 16385', 'logbuffersize', 'out of range [1, 16384]'],
    ['kern.hwpmc.nbuffers = -1', 'nbuffers', 'out of range [1, 4096]'],
    ['kern.hwpmc.nsamples = 1.5', 'nsamples', 'out of range'],
    ['kern.hwpmc.nsamples =', 'nsamples', 'out of range'],
  ];
  for (const [line, key, message] of cases) {
    const { t, warnings } = load(line);
    assert.equal(t[key], DEFAULT_TUNABLES[key], line);
    assert.equal(warnings.length, 1, line);
    assert.ok(warnings[0].includes(`kern.hwpmc.${key}`) && warnings[0].includes(message), warnings[0]);
    assert.ok(warnings[0].endsWith(`using ${DEFAULT_TUNABLES[key]}`), warnings[0]);
  }
  const { t, warnings } = load('', { TSPMC_NBUFFERS: '99999' });
  assert.equal(t.nbuffers, DEFAULT_TUNABLES.nbuffers);
  assert.match(warnings[0], /^TSPMC_NBUFFERS: "99999" out of range/);
});

test('an oversized call chain depth becomes the maximum, as pmc_initialize() does', () => {
  const { t, warnings } = load('kern.hwpmc.callchaindepth = 100000');
  assert.equal(t.callchaindepth, PMC_CALLCHAIN_DEPTH_MAX);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`using ${PMC_CALLCHAIN_DEPTH_MAX}$`));
  assert.equal(load('', { TSPMC_CALLCHAINDEPTH: String(PMC_CALLCHAIN_DEPTH_MAX) }).t.callchaindepth, PMC_CALLCHAIN_DEPTH_MAX);
});

test(
  'a call chain depth of 0 or less also becomes the maximum, as pmc_initialize() does',
  () => {
    for (const v of ['0', '-3']) assert.equal(load(`kern.hwpmc.callchaindepth = ${v}`).t.callchaindepth, PMC_CALLCHAIN_DEPTH_MAX, v);
  },
);

test('non-numeric values give the default with a message', () => {
  for (const [line, key] of [
    ['kern.hwpmc.nsamples = many', 'nsamples'],
    ['kern.hwpmc.callchaindepth = deep', 'callchaindepth'],
    ['security.bsd.unprivileged_syspmcs = yes', 'unprivileged_syspmcs'],
    ['security.bsd.unprivileged_syspmcs = 2', 'unprivileged_syspmcs'],
  ] as [string, keyof Tunables][]) {
    const { t, warnings } = load(line);
    assert.equal(t[key], DEFAULT_TUNABLES[key], line);
    assert.equal(warnings.length, 1, line);
    assert.ok(warnings[0].includes(line.split('=')[1].trim()), warnings[0]);
  }
});

test("the module hands the call chain depth to its classes' requests", () => {
  const cls = new FakeClass({ rows: 1 });
  const m = fakeModule({ classes: [cls], tunables: loadTunables({ env: { TSPMC_CALLCHAINDEPTH: '24' }, configFile: configFile('') }) });
  assert.equal(m.tunables.callchaindepth, 24);
  m.pmcAllocate(selfCaller(), { classId: PmcClass.FAKE, event: 1, mode: PmcMode.SS, cpu: 0, caps: 0, flags: PmcFlags.CALLCHAIN, count: 100n });
  assert.deepEqual([cls.sets[0].request.callchain, cls.sets[0].request.callchainDepth], [true, 24]);
});
