// --stats: what the log held and how much of it resolved, as text (in the
// manner of pmcstat's "CONVERSION STATISTICS") or as JSON.
import type { AnalysisResult } from './analyze.js';

export function* formatStats(result: AnalysisResult): Generator<string> {
  const s = result.stats;
  const row = (key: string, value: number | string): string => ` ${key.padEnd(28)} ${value}\n`;
  yield 'CONVERSION STATISTICS:\n';
  for (const [type, n] of Object.entries(s.records)) yield row(`#records/${type}`, n);
  yield row('#samples/total', s.samples);
  yield row('#samples/dropped', s.dropped);
  yield row('#samples/lost', s.lost);
  for (const [kind, n] of Object.entries(s.unlogged)) if (n > 0) yield row(`#unlogged/${kind}`, n);
  if (s.cutShort) yield row('#log/cut-short', 'yes (no CLOSELOG)');
  yield row('#samples/unresolved', s.unresolved);
  yield row('#samples/unknown-object', s.unknownObject);
  yield row('#samples/unknown-function', s.unknownFunction);
  yield row('#callchain/empty', s.emptyCallchains);
  yield row('#callchain/caller-frames', s.callerFrames);
  for (const p of s.pmcs) yield row(`#pmc/${p.name}`, p.samples);
  if (s.pmcsOmitted > 0) yield row('#pmc/not-listed', s.pmcsOmitted);
  for (const p of s.problems) yield ` #unreadable ${p.path}: ${p.reason}\n`;
  if (s.problemsOmitted > 0) yield ` #unreadable ... and ${s.problemsOmitted} more\n`;
  if (s.filteredOut > 0) yield row('#samples/filtered-out', s.filteredOut);
}

export function* formatStatsJson(result: AnalysisResult): Generator<string> {
  yield JSON.stringify(result.stats, null, 2) + '\n';
}
