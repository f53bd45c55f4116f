// What top mode (pmcstat -T) prints: a header with the PMC, its rate, the
// samples, drops and losses, the keys; then the hottest functions with
// their self and total share, process and image, and under each (when call
// chains are on) its commonest caller chains. Lines fit the terminal.
import { describeRate } from '../report/sample-period.js';
import type { TopProfile } from '../report/top-profile.js';
import { groupThousands } from './count-output.js';

export interface TopState {
  /** Index of the PMC shown. */
  pmc: number;
  chains: boolean;
  perProcess: boolean;
  /** Since the last refresh rather than since the start. */
  recent: boolean;
  paused: boolean;
  threshold: number;
  skipLinks: boolean;
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

export function formatTop(profile: TopProfile, state: TopState, layout: TopLayout): string[] {
  const pmc = profile.pmcs[state.pmc];
  const samples = profile.samples(state.pmc, state.recent);
  const lines: string[] = [];
  const which = pmc ? `PMC ${state.pmc + 1}/${profile.pmcs.length}: ${pmc.name} (${describeRate(pmc)})` : 'no PMC has logged yet';
  const span = state.recent ? 'since the last refresh' : 'since the start';
  lines.push(
    `pmcstat top · ${which} · ${groupThousands(samples)} samples ${span} · ${groupThousands(profile.dropped)} dropped · ${groupThousands(profile.lost)} lost · ${layout.elapsed.toFixed(1)} s${state.paused ? ' · PAUSED' : ''}`,
  );
  if (layout.keys) {
    const on = (b: boolean): string => (b ? 'on' : 'off');
    lines.push(`keys: p next PMC · c call chains (${on(state.chains)}) · P per process (${on(state.perProcess)}) · d since start/last refresh · space pause · q quit`);
  }
  lines.push('');
  lines.push(`${'%SELF'.padStart(7)} ${'%TOTAL'.padStart(7)}  ${'PROCESS'.padEnd(16)} ${'IMAGE'.padEnd(20)} FUNCTION`);
  const rows = profile.rows(state.pmc, { perProcess: state.perProcess, recent: state.recent, threshold: state.threshold, skipLinks: state.skipLinks, chains: state.chains ? 2 : 0 });
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
