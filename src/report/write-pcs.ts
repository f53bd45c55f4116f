// pmcstat -m: one line per sample whose PC has a symbol:
// `PC FUNCTION 0xSTART 0xEND` (the function's runtime extent).
// Samples without a symbol are left out, as pmcstat does (see --stats).
import { PmcError } from '../pmc-error.js';
import { formatPointer } from './address.js';
import type { AnalysisResult } from './analyze.js';
import { FrameKind } from './frames.js';
import type { SampleStore } from './sample-store.js';

export function keptSamples(result: AnalysisResult, output: string): SampleStore {
  if (!result.samples) throw new PmcError('EINVAL', `the ${output} output needs the samples: analyze with needs.samples`);
  return result.samples;
}

export function* formatPcs(result: AnalysisResult): Generator<string> {
  for (const s of keptSamples(result, '-m (sampled PCs)')) {
    const frames = result.frames;
    const f = s.frames[0];
    if (frames.kind(f) !== FrameKind.Symbol) continue;
    yield `0x${s.pcs[0].toString(16)} ${frames.name(f)} ${formatPointer(frames.start(f) + s.leafBias)} ${formatPointer(frames.end(f) + s.leafBias)}\n`;
  }
}
