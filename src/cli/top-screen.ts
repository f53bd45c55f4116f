// What top mode (pmcstat -T) prints and the keys that change it: a header
// with the PMC, its rate, the samples, drops and losses, the keys; then the
// hottest functions with their self and total share, process and image,
// and under each (in the callers view) its commonest caller chains. Lines
// fit the terminal. The keys are FreeBSD pmcstat's where Linux has the same
// thing (p, m, n, c then a or d, f, space, q), plus P for a per-process
// view.
import { describeRate } from '../report/sample-period.js';
import type { TopProfile, TopView } from '../report/top-profile.js';
import { groupThousands } from './count-output.js';

export interface TopState {
  /** Index of the view shown, in profile.views(merged). */
  pmc: number;
  /** PMCs of one event name (the per-CPU PMCs of -S) shown as one (pmcstat's m). */
  merged: boolean;
  /** The callers view (each function's caller chains) rather than the flat one (pmcstat's n). */
  chains: boolean;
  perProcess: boolean;
  /** Since the last refresh (delta) rather than since the start (accumulated). */
  recent: boolean;
  /** `c` was pressed: the next key chooses the cost mode, a or d. */
  choosingCost: boolean;
  paused: boolean;
  threshold: number;
  skipLinks: boolean;
  /** What the last key did, shown under the keys (pmcstat's "Key: ... =>" line). */
  note?: string;
}

export interface TopLayout {
  width: number;
  /** Rows available; the table is cut to fit. */
  height: number;
  /** Seconds since the PMCs started. */
  elapsed: number;
  /** Whether the keys line is shown (a terminal that takes keys). */
  keys: boolean;
}

const percent = (n: number, of: number): string => (of > 0 ? ((100 * n) / of).toFixed(2) : '0.00');
const fit = (line: string, width: number): string => (line.length > width ? line.slice(0, Math.max(0, width - 1)) + '…' : line);
const onOff = (b: boolean): string => (b ? 'on' : 'off');

/** The view shown, if any PMC has logged. */
function shown(profile: TopProfile, state: TopState): { view: TopView; count: number } | undefined {
  const views = profile.views(state.merged);
  const view = views[state.pmc];
  return view && { view, count: views.length };
}

/** Applies a key to the state; 'quit' for q (and ^C), whether anything changed otherwise. */
export function applyTopKey(profile: TopProfile, state: TopState, key: string): 'quit' | boolean {
  if (key === 'q' || key === '\x03') return 'quit';
  if (state.choosingCost) {
    state.choosingCost = false;
    if (key === 'a' || key === 'd') {
      state.recent = key === 'd';
      state.note = state.recent ? 'delta mode: the samples of each refresh' : 'accumulation mode: the samples since the start';
    } else state.note = 'cost mode unchanged (c then a or d)';
    return true;
  }
  switch (key) {
    case 'p': {
      const views = profile.views(state.merged);
      state.pmc = views.length > 0 ? (state.pmc + 1) % views.length : 0;
      state.note = views.length > 0 ? `switching to PMC ${views[state.pmc].label}` : 'no PMC has logged yet';
      break;
    }
    case 'm': {
      // Stay on the PMC shown: the merged view holding it, or its first PMC.
      const first = shown(profile, state)?.view.pmcs[0];
      state.merged = !state.merged;
      const at = profile.views(state.merged).findIndex((v) => first !== undefined && v.pmcs.includes(first));
      state.pmc = Math.max(0, at);
      state.note = `merge PMCs ${onOff(state.merged)}`;
      break;
    }
    case 'n':
      state.chains = !state.chains;
      state.note = `switching to the ${state.chains ? 'callers' : 'flat'} view`;
      break;
    case 'c':
      state.choosingCost = true;
      state.note = 'cost mode: a accumulated, d delta';
      break;
    case 'f':
      state.skipLinks = !state.skipLinks;
      state.note = `skip links ${onOff(state.skipLinks)}`;
      break;
    case 'P':
      state.perProcess = !state.perProcess;
      state.note = `per-process view ${onOff(state.perProcess)}`;
      break;
    case ' ':
      state.paused = !state.paused;
      state.note = state.paused ? 'pause: press space again to continue' : 'continuing';
      break;
    default:
      return false;
  }
  return true;
}

export function formatTop(profile: TopProfile, state: TopState, layout: TopLayout): string[] {
  const at = shown(profile, state);
  const samples = at ? profile.samples(at.view, state.recent) : 0;
  const lines: string[] = [];
  const first = at?.view.pmcs[0];
  const which = at && first ? `PMC ${state.pmc + 1}/${at.count}: ${at.view.label} (${describeRate(first)})` : 'no PMC has logged yet';
  const span = state.recent ? 'in the last interval' : 'since the start';
  lines.push(
    `pmcstat top · ${which} · ${groupThousands(samples)} samples ${span} · ${groupThousands(profile.dropped)} dropped · ${groupThousands(profile.lost)} lost · ${layout.elapsed.toFixed(1)} s${state.paused ? ' · PAUSED' : ''}`,
  );
  if (layout.keys) {
    const keys = [
      'keys: p next PMC',
      `m merge (${onOff(state.merged)})`,
      `n view (${state.chains ? 'callers' : 'flat'})`,
      `c a/d cost (${state.recent ? 'delta' : 'accumulated'})`,
      `f skip links (${onOff(state.skipLinks)})`,
      `P per process (${onOff(state.perProcess)})`,
      'space pause',
      'q quit',
    ];
    // As many keys a line as the terminal is wide.
    let line = keys[0];
    for (const k of keys.slice(1)) {
      if (line.length + 3 + k.length > layout.width) {
        lines.push(line);
        line = `      ${k}`;
      } else line += ` · ${k}`;
    }
    lines.push(line);
    if (state.note) lines.push(`=> ${state.note}`);
  }
  lines.push('');
  lines.push(`${'%SELF'.padStart(7)} ${'%TOTAL'.padStart(7)}  ${'PROCESS'.padEnd(16)} ${'IMAGE'.padEnd(20)} FUNCTION`);
  const rows = at ? profile.rows(at.view, { perProcess: state.perProcess, recent: state.recent, threshold: state.threshold, skipLinks: state.skipLinks, chains: state.chains ? 2 : 0 }) : [];
  for (const r of rows) {
    if (lines.length >= layout.height) break;
    const process = r.otherProcesses > 0 ? `${r.process}+${r.otherProcesses}` : r.process;
    lines.push(`${percent(r.self, samples).padStart(7)} ${percent(r.total, samples).padStart(7)}  ${process.padEnd(16)} ${r.image.padEnd(20)} ${r.name}`);
    if (!state.chains) continue;
    for (const c of r.callers) {
      if (lines.length >= layout.height) break;
      const chain = c.names.length > 0 ? c.names.join(' ← ') : '(no callers)';
      lines.push(`${' '.repeat(47)} ← ${chain}  (${percent(c.samples, r.self)}%)`);
    }
  }
  return lines.map((l) => fit(l, layout.width));
}
