// What the CLI uses of the offline analysis.
export { Analysis, analyzeLog, type AnalyzeOptions, type AnalysisResult, type AnalysisStats } from './analyze.js';
export type { AnalysisNeeds } from './callgraph.js';
export { AnalysisLimitError, DEFAULT_MEMORY_LIMIT_MIB } from './memory-budget.js';
export { analysisNeeds, OUTPUTS, writeOutputs, writeText, type OutputFormat, type OutputName, type OutputOptions, type OutputReport, type OutputTargets } from './outputs.js';
export { DEFAULT_CALLGRAPH_DEPTH } from './write-callgraph.js';
export { Symbolizer, type SymbolizedAddress } from './symbolizer.js';
