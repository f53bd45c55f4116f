// pmcstat -m: one line per sample whose PC has a symbol:
// `PC FUNCTION 0xSTART 0xEND` (the function's runtime extent).
// Samples without a symbol are left out, as pmcstat does (see --stats).
import { PmcError } from '../pmc-error.js';
import { formatPointer } from './address.js';
import type { AnalysisResult } from './analyze.js';
import type { SampleRecord } from './callgraph.js';
import { FrameKind } from './frames.js';

export function keptSamples(result: AnalysisResult, output: string): SampleRecord[] {
  if (!result.samples) throw new PmcError('EINVAL', `the ${output} output needs the samples: analyze with keepSamples: true`);
  return result.samples;
}

export function* formatPcs(result: AnalysisResult): Generator<string> {
  for (const s of keptSamples(result, '-m (sampled PCs)')) {
    const f = result.frames.get(s.frames[0]);
    if (f.kind !== FrameKind.Symbol) continue;
    yield `0x${s.pcs[0].toString(16)} ${f.name} ${formatPointer(f.start + s.leafBias)} ${formatPointer(f.end + s.leafBias)}\n`;
  }
}
