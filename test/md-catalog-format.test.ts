// The pure parts of the catalog: sysfs format and term parsing, bit packing,
// cpu lists, and resolution rules over made-up classes (a PMU this machine
// does not have, a HW class that is available).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCpuList } from '../src/pmc-common.js';
import type { EventClassInfo } from '../src/md/event-class.js';
import { normalizeEventName } from '../src/md/event-names.js';
import { resolveEvent } from '../src/md/event-resolve.js';
import { ListedClass } from '../src/md/listed-class.js';
import { PmuClass, type PmuOptions } from '../src/md/pmu-class.js';
import { emptyConfig, encodeTerms, packField, parseFormat, parseTerms, unpackField, type FormatField, type Term } from '../src/md/pmu-format.js';
import { isPmcError } from '../src/pmc-error.js';

function throwsPmc(fn: () => unknown, code: string, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isPmcError(e), String(e));
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" mentions "${f}"`);
    return true;
  });
}

/** Bits of `value` scattered to `positions` one by one: the packing rule, spelled out independently. */
function scatter(value: bigint, positions: number[]): bigint {
  let out = 0n;
  positions.forEach((p, i) => {
    if ((value >> BigInt(i)) & 1n) out |= 1n << BigInt(p);
  });
  return out;
}

const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

test('format files: words, ranges, single bits, ascending packing order', () => {
  const f = parseFormat('ldlat', 'config1:1,6-10,44\n', 'f');
  assert.equal(f.word, 'config1');
  assert.deepEqual(f.bits, [1, ...range(6, 10), 44]);
  // Listed out of order, packed in bit order (as perf's bitmap does).
  assert.deepEqual(parseFormat('x', 'config:32-35,0-7', 'f').bits, [...range(0, 7), ...range(32, 35)]);
  for (const bad of ['config3:0-7', 'config:7-0', 'config:0-64', 'config:', 'umask:0-7', 'config:0-7,']) {
    throwsPmc(() => parseFormat('x', bad, 'format/x'), 'EINVAL', 'format/x');
  }
});

test('packing: split fields, clearing, width checks naming the term', () => {
  const f = parseFormat('event', 'config:0-7,32-35', 'f');
  const w = emptyConfig();
  packField(w, f, 0xabcn, 'spec');
  assert.equal(w.config, scatter(0xabcn, [...range(0, 7), ...range(32, 35)]));
  assert.equal(unpackField(w, f), 0xabcn);
  packField(w, f, 0x1n, 'spec'); // overwrites, does not OR
  assert.equal(w.config, 1n);
  throwsPmc(() => packField(w, f, 0x1000n, 'spec'), 'EINVAL', '"event"', '12-bit', 'config:0-7,32-35', 'max 0xfff');
  const full = parseFormat('event', 'config:0-63', 'f');
  packField(w, full, (1n << 64n) - 1n, 'spec');
  throwsPmc(() => packField(w, full, 1n << 64n, 'spec'), 'EINVAL', '64-bit');
});

test('term lists: bare terms, decimal and hex, placeholders, bad input', () => {
  const terms = parseTerms(' event=0x3c, umask=10,inv,chan=? ', 't');
  assert.deepEqual(
    terms.map((t) => [t.name, t.value]),
    [['event', 0x3cn], ['umask', 10n], ['inv', undefined], ['chan', '?']],
  );
  assert.deepEqual(parseTerms('', 't'), []);
  throwsPmc(() => parseTerms('event=-1', 'spec'), 'EINVAL', '"event"');
  throwsPmc(() => parseTerms('event=0x', 'spec'), 'EINVAL', '"event"');
  throwsPmc(() => parseTerms('=3', 'spec'), 'EINVAL', '"=3"');
  throwsPmc(() => parseTerms('a,,b', 'spec'), 'EINVAL');
});

test('cpu lists', () => {
  assert.deepEqual(parseCpuList('0-3,5,8-9\n', 'l'), [0, 1, 2, 3, 5, 8, 9]);
  assert.deepEqual(parseCpuList('7', 'l'), [7]);
  assert.deepEqual(parseCpuList('\n', 'l'), []);
  throwsPmc(() => parseCpuList('3-1', 'online'), 'EINVAL', 'online');
  throwsPmc(() => parseCpuList('0-x', 'online'), 'EINVAL');
});

test('pmc_match_event_name equivalence', () => {
  assert.equal(normalizeEventName('L1-dcache.Load_misses x'), normalizeEventName('l1_DCACHE-load.misses-X'));
  assert.notEqual(normalizeEventName('sched:a'), normalizeEventName('sched-a'));
});

// A made-up uncore-like PMU with split fields, a flag, a config1 field and
// aliases, and a made-up kernel that opens every event of it.
function fakePmu(options: PmuOptions = {}): PmuClass {
  const formats: FormatField[] = [
    parseFormat('event', 'config:0-7,32-35', 'f'),
    parseFormat('umask', 'config:8-15', 'f'),
    parseFormat('edge', 'config:18', 'f'),
    parseFormat('ldlat', 'config1:0-15', 'f'),
    parseFormat('chan', 'config2:0-3', 'f'),
  ];
  const aliases: Record<string, Term[]> = {
    clockticks: parseTerms('event=0xff,umask=0x0', 'a'),
    reads: parseTerms('event=0x4,umask=0x3,chan=?', 'a'),
  };
  return new PmuClass('fake_uncore', 42, 0x40, {
    source: {
      aliasNames: () => Object.keys(aliases),
      aliasTerms: (a) => aliases[a],
      aliasNotes: () => [],
      formats: () => formats,
      cpumask: () => undefined,
      where: (a) => `events/${a}`,
    },
    open: () => undefined,
    ...options,
  });
}

test('term specs over a fake PMU: fields, flags, aliases, placeholders, whole words', () => {
  const pmu = fakePmu();
  const classes = [pmu];
  const ev = resolveEvent(classes, 'fake_uncore/event=0x1c3,umask=2,edge,ldlat=3/').event;
  assert.deepEqual(ev.perf, {
    type: 42,
    config: scatter(0x1c3n, [...range(0, 7), ...range(32, 35)]) | (2n << 8n) | (1n << 18n),
    config1: 3n,
  });
  assert.equal(ev.name, 'fake_uncore/event=0x1c3,umask=2,edge,ldlat=3/');
  assert.equal(pmu.eventName(ev.code, ev.perf), 'fake_uncore/event=0x1c3,umask=0x2,edge=0x1,ldlat=0x3/');
  assert.equal(resolveEvent(classes, 'fake_uncore/event=0x1c3,umask=2,edge,ldlat=3/').event.code, ev.code, 'same config, same code');

  assert.equal(resolveEvent(classes, 'fake_uncore/clockticks/').event, pmu.events()[0]);
  assert.equal(resolveEvent(classes, 'fake_uncore/clockticks,umask=1/').event.perf.config, 0x1ffn);
  throwsPmc(() => resolveEvent(classes, 'fake_uncore/reads/'), 'EINVAL', 'chan=<value>');
  assert.deepEqual(resolveEvent(classes, 'fake_uncore/reads,chan=2/').event.perf, { type: 42, config: 0x304n, config2: 2n });
  throwsPmc(() => resolveEvent(classes, 'fake_uncore/reads,chan=16/'), 'EINVAL', '"chan"', '4-bit');
  throwsPmc(() => resolveEvent(classes, 'fake_uncore/umask=0x100/'), 'EINVAL', '"umask"', '8-bit');
  throwsPmc(() => resolveEvent(classes, 'fake_uncore/event=?/'), 'EINVAL', '"event"');
  assert.deepEqual(resolveEvent(classes, 'fake_uncore/config=0x10,config1=0x20/').event.perf, { type: 42, config: 0x10n, config1: 0x20n });
  throwsPmc(() => resolveEvent(classes, 'fake_uncore/cmask=1/'), 'EINVAL', '"cmask"', 'event, umask, edge, ldlat, chan');
  throwsPmc(() => resolveEvent(classes, 'other_pmu/event=1/'), 'ENOENT', 'other_pmu', 'fake_uncore');
  throwsPmc(() => resolveEvent([fakePmu({ unusable: 'gone fishing' })], 'fake_uncore/event=1/'), 'ENOENT', 'gone fishing');
});

test('alias texts may hold placeholders; user terms may not', () => {
  const pmu = fakePmu();
  const sysfs = encodeTerms(pmu, parseTerms('event=0x4,umask=0x3,chan=?', 'a'), 'events/reads', true);
  assert.equal(sysfs.words.config, 0x304n);
  assert.deepEqual([...sysfs.pending], ['chan']);
  throwsPmc(() => encodeTerms(pmu, parseTerms('chan=?', 'u'), 'spec'), 'EINVAL', '"chan"');
  // A user's bare alias expands in place; its placeholder is then owed by the user.
  const user = encodeTerms(pmu, parseTerms('reads', 'u'), 'spec');
  assert.deepEqual([...user.pending], ['chan']);
});

test('exact names beat loose ones; an available class beats an unavailable one', () => {
  // Classes over fixed lists of [name, code], with a made-up kernel that refuses
  // every event of an unavailable class and the `refused` codes of the others.
  const mk = (name: string, available: boolean, events: [string, number][], refused: number[] = []): EventClassInfo =>
    new ListedClass(
      { family: name, perfType: 50, classId: 0x40, rows: 4, table: events.map(([e, config]) => ({ name: e, config, description: e })), noDevice: `${name} is off` },
      (p) => (!available || refused.includes(Number(p.perf.config)) ? 'ENOENT' : undefined),
    );
  const off = mk('off', false, [['cycles', 1]]);
  const on = mk('on', true, [['cycles', 2], ['Mixed_Case', 3]]);
  const loose = mk('loose', true, [['CYCLES', 4]]);
  assert.equal(resolveEvent([off, on], 'cycles').cls, on);
  assert.equal(resolveEvent([off, loose], 'cycles').cls, loose, 'a loose match in a usable class beats an unusable exact one');
  throwsPmc(() => resolveEvent([off], 'cycles'), 'ENOENT', 'off is off');
  assert.equal(resolveEvent([on], 'mixed-case').event.code, 3);
  assert.equal(resolveEvent([off, on], 'ON-cycles').cls, on);
  throwsPmc(() => resolveEvent([on], 'cycels'), 'ENOENT', 'did you mean cycles');
  const picky = mk('picky', true, [['cycles', 2], ['ref-cycles', 9]], [9]);
  throwsPmc(() => resolveEvent([picky], 'ref-cycles'), 'ENOENT', 'not supported here', 'ENOENT');
});
