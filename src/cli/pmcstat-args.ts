// pmcstat(8)'s command line. Options are read in order, as pmcstat's getopt
// loop reads them: -C, -E, -N, -U, -W and -d toggle, and -c and -n set,
// what the PMC options after them get.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { onlineCpus } from '../lib/cpu-list.js';
import { DEFAULT_SAMPLE_COUNT, PmcMode } from '../module/pmc-types.js';
import { readSysctl } from '../os/procfs.js';
import { parseCpuList } from '../pmc-common.js';
import { isPmcError } from '../pmc-error.js';
import { OUTPUTS, type OutputFormat, type OutputName, type OutputTargets } from '../report/outputs.js';
import { numberArg, UsageError } from './cli-error.js';
import { joinOptionValues } from './option-values.js';

export interface PmcArg {
  spec: string;
  mode: PmcMode;
  /** System modes: the CPUs to allocate on (one PMC each). */
  cpus: number[];
  descendants: boolean;
  cumulative: boolean;
  logProcExit: boolean;
  logProcCsw: boolean;
  callchain: boolean;
  userCallchain: boolean;
  rate: bigint;
  frequency: boolean;
}

export interface PmcstatArgs {
  pmcs: PmcArg[];
  /** -t: pids or process-name regular expressions. */
  targets: string[];
  command: string[];
  output?: string;
  logFile?: string;
  analyze?: string;
  interval?: number;
  duration?: number;
  /** --grace: seconds a command may take to exit after a stop signal, before SIGKILL. */
  grace?: number;
  /** The analysis outputs asked for (report/outputs.ts), by name: a file, '-', or for -g the -D directory. */
  outputs: OutputTargets;
  gprofDir: string;
  depth: number;
  json: boolean;
  quiet: boolean;
  verbose: number;
  kernelSymbols?: string;
  /** --memory-limit: MiB the analysis' tables may take. */
  memoryLimit?: number;
  threadFilter?: number;
  cpuFilter?: number[];
  /** -I: the sampled PC itself rather than its function at the top of each chain. */
  leafAddresses: boolean;
  /** -r: the directory executables' paths are taken relative to. */
  root?: string;
  /** -L: list the event names and exit. */
  listEvents: boolean;
  /** -u: describe the event a specifier names (or the events matching it) and exit. */
  describe?: string;
  /** -T: top mode. */
  top: boolean;
  /** -f threshold=N: top mode leaves out functions under N percent of the samples. */
  topThreshold: number;
  /** -f skiplink=1: top mode hides call chain nodes that are alone under their caller. */
  topSkipLink: boolean;
  help: boolean;
  /** Things worth saying that are not errors (options after the last PMC they could apply to). */
  warnings: string[];
}

/** Whether an output asks for an analysis of the log (-G, --folded, ...). */
export function hasOutputs(a: PmcstatArgs): boolean {
  return Object.keys(a.outputs).length > 0;
}

/** The option of each output: its letter (-G) or its word (--folded). */
const outputKey = (o: OutputFormat): string => o.option.replace(/^--?/, '');
const OUTPUT_BY_KEY = new Map<string, OutputFormat<OutputName>>(OUTPUTS.map((o) => [outputKey(o), o]));

/** FreeBSD pmcstat's options that do not fit Linux or tspmc, and why. */
const REFUSED: Record<string, string> = {
  e: '(wide gprof histogram counters) is not supported: GNU gprof reads only the 16-bit counters -g writes',
  Z: 'is not supported: FreeBSD pmcstat has -Z in its getopt string but gives it no meaning',
  A: '(skip symbol lookup) is not supported: it is in a fork of FreeBSD only; -I shows the sampled addresses',
  b: '(PMU event groups) is not supported: it is in a fork of FreeBSD only, and tspmc, as hwpmc, never multiplexes a PMC',
};

/** The getopt string of FreeBSD pmcstat; letters we do not implement are refused with a message. */
const OPTIONS: ParseArgsConfig['options'] = {
  ...Object.fromEntries(Object.keys(REFUSED).map((k) => [k, { type: 'boolean', short: k }])),
  I: { type: 'boolean', short: 'I' },
  L: { type: 'boolean', short: 'L' },
  f: { type: 'string', short: 'f', multiple: true },
  r: { type: 'string', short: 'r' },
  u: { type: 'string', short: 'u' },
  ...Object.fromEntries(
    OUTPUTS.map((o: OutputFormat) => {
      const key = outputKey(o);
      return [key, { type: o.value ? 'string' : 'boolean', ...(o.option.startsWith('--') ? {} : { short: key }) }];
    }),
  ),
  C: { type: 'boolean', short: 'C', multiple: true },
  D: { type: 'string', short: 'D' },
  E: { type: 'boolean', short: 'E', multiple: true },
  N: { type: 'boolean', short: 'N', multiple: true },
  O: { type: 'string', short: 'O' },
  P: { type: 'string', short: 'P', multiple: true },
  R: { type: 'string', short: 'R' },
  S: { type: 'string', short: 'S', multiple: true },
  T: { type: 'boolean', short: 'T' },
  U: { type: 'boolean', short: 'U', multiple: true },
  W: { type: 'boolean', short: 'W', multiple: true },
  c: { type: 'string', short: 'c', multiple: true },
  d: { type: 'boolean', short: 'd', multiple: true },
  i: { type: 'string', short: 'i' },
  k: { type: 'string', short: 'k' },
  l: { type: 'string', short: 'l' },
  n: { type: 'string', short: 'n', multiple: true },
  o: { type: 'string', short: 'o' },
  p: { type: 'string', short: 'p', multiple: true },
  q: { type: 'boolean', short: 'q' },
  s: { type: 'string', short: 's', multiple: true },
  t: { type: 'string', short: 't', multiple: true },
  v: { type: 'boolean', short: 'v', multiple: true },
  w: { type: 'string', short: 'w' },
  z: { type: 'string', short: 'z' },
  json: { type: 'boolean' },
  'memory-limit': { type: 'string' },
  freq: { type: 'string', multiple: true },
  grace: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

/** Options followed by a value, for finding where the command starts (getopt stops at the first operand). */
function takesValue(letter: string): boolean {
  const o = Object.values(OPTIONS!).find((v) => v.short === letter);
  return o?.type === 'string';
}

/** Splits argv into options and the command, as getopt does: at `--` or the first operand. */
function splitCommand(argv: string[]): { options: string[]; command: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return { options: argv.slice(0, i), command: argv.slice(i + 1) };
    if (a.startsWith('--')) {
      const name = a.slice(2).split('=')[0];
      if (!a.includes('=') && OPTIONS![name]?.type === 'string') i++;
      continue;
    }
    if (!a.startsWith('-') || a === '-') return { options: argv.slice(0, i), command: argv.slice(i) };
    // A group like -dp: the value of the first letter that takes one is the rest, or the next word.
    for (let j = 1; j < a.length; j++) {
      if (takesValue(a[j])) {
        if (j === a.length - 1) i++;
        break;
      }
    }
  }
  return { options: argv, command: [] };
}

/** -c's CPU list: `*` (every online CPU), or numbers and ranges as the kernel writes them (0,2-3). */
function cpuListArg(option: string, text: string): number[] {
  if (text === '*') return onlineCpus();
  let cpus: number[];
  try {
    cpus = parseCpuList(text, `option ${option}`);
  } catch (e) {
    throw isPmcError(e) ? new UsageError(e.detail) : e;
  }
  if (cpus.length === 0) throw new UsageError(`option ${option}: "${text}" names no CPU (expected "*" or numbers like 0,2-3)`);
  return cpus;
}

/** The kernel refuses sample periods with bit 63 set. */
const MAX_SAMPLE_PERIOD = (1n << 63n) - 1n;
const MAX_SAMPLE_RATE = '/proc/sys/kernel/perf_event_max_sample_rate';

/** -n (events per sample) or --freq (samples per second), within what the kernel takes. */
function parseRate(option: string, text: string, frequency: boolean): bigint {
  if (!/^\d+$/.test(text.trim()) || BigInt(text.trim()) === 0n) throw new UsageError(`option ${option}: "${text}" is not a positive integer`);
  const rate = BigInt(text.trim());
  if (!frequency && rate > MAX_SAMPLE_PERIOD) throw new UsageError(`option ${option}: ${rate} is too large: a sample period is at most ${MAX_SAMPLE_PERIOD} (2^63 - 1)`);
  if (frequency) {
    // Without the setting, the kernel will judge.
    const setting = readSysctl('kernel.perf_event_max_sample_rate');
    const max = setting !== undefined && /^\d+$/.test(setting) ? BigInt(setting) : undefined;
    if (max !== undefined && rate > max) throw new UsageError(`option ${option}: ${rate} samples per second is above the kernel's limit, ${max} (${MAX_SAMPLE_RATE})`);
  }
  return rate;
}

/** What an option's value must be, for the message when it is empty. */
const EXPECTED: Record<string, string> = {
  c: 'a CPU list ("*" or numbers like 0,2-3)',
  t: 'a process id or a regular expression over process names',
  p: 'an event specification',
  s: 'an event specification',
  P: 'an event specification',
  S: 'an event specification',
};

export function parsePmcstatArgs(argv: string[]): PmcstatArgs {
  const { options, command } = splitCommand(argv);
  let tokens: { kind: string; name?: string; rawName?: string; value?: string }[];
  try {
    tokens = parseArgs({ args: joinOptionValues(options, takesValue), options: OPTIONS, strict: true, allowPositionals: false, tokens: true }).tokens as typeof tokens;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  const out: PmcstatArgs = {
    pmcs: [],
    targets: [],
    command,
    outputs: {},
    gprofDir: '.',
    depth: 16,
    json: false,
    quiet: false,
    verbose: 0,
    leafAddresses: false,
    listEvents: false,
    top: false,
    // pmcstat's top mode hides functions under half a percent.
    topThreshold: 0.5,
    topSkipLink: false,
    help: false,
    warnings: [],
  };
  // Options that shape the PMC options after them; one with no PMC after it does nothing.
  const shaping = new Set(['C', 'E', 'N', 'U', 'W', 'd', 'n', 'freq']);
  let unusedShaping: string[] = [];
  // The toggles and settings that apply to the PMC options that follow.
  let cpus: number[] | undefined;
  let descendants = false;
  let cumulative = false;
  let logProcExit = false;
  let logProcCsw = false;
  let callchain = true;
  let userCallchain = false;
  let rate = BigInt(DEFAULT_SAMPLE_COUNT);
  let frequency = false;
  let sawCpuOption = false;

  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const v = t.value ?? '';
    const opt = t.rawName ?? '';
    if (t.value === '') throw new UsageError(`option ${opt}: the value is empty; expected ${EXPECTED[t.name!] ?? 'a value'}`);
    const output = OUTPUT_BY_KEY.get(t.name!);
    if (output) {
      out.outputs[output.name] = output.value ? v : '-';
      continue;
    }
    if (shaping.has(t.name!)) unusedShaping.push(opt);
    else if (['p', 's', 'P', 'S'].includes(t.name!)) unusedShaping = [];
    switch (t.name) {
      case 'C': cumulative = !cumulative; break;
      case 'E': logProcExit = !logProcExit; break;
      case 'N': callchain = !callchain; break;
      case 'U': userCallchain = !userCallchain; break;
      case 'W': logProcCsw = !logProcCsw; break;
      case 'd': descendants = !descendants; break;
      case 'c': cpus = cpuListArg(opt, v); sawCpuOption = true; break;
      case 'n': rate = parseRate(opt, v, false); frequency = false; break;
      case 'freq': rate = parseRate(opt, v, true); frequency = true; break;
      case 'p': case 's': case 'P': case 'S': {
        const mode = { p: PmcMode.TC, s: PmcMode.SC, P: PmcMode.TS, S: PmcMode.SS }[t.name as 'p' | 's' | 'P' | 'S'];
        out.pmcs.push({ spec: v, mode, cpus: cpus ?? onlineCpus(), descendants, cumulative, logProcExit, logProcCsw, callchain, userCallchain, rate, frequency });
        break;
      }
      case 't': out.targets.push(v); break;
      case 'o': out.output = v; break;
      case 'O': out.logFile = v; break;
      case 'R': out.analyze = v; break;
      case 'w': out.interval = numberArg(opt, v, { min: 0.001 }); break;
      case 'l': out.duration = numberArg(opt, v, { min: 0.001 }); break;
      case 'grace': out.grace = numberArg(opt, v, { min: 0 }); break;
      case 'D': out.gprofDir = v; break;
      case 'z': out.depth = numberArg(opt, v, { min: 1, integer: true }); break;
      case 'k': out.kernelSymbols = v; break;
      case 'i': out.threadFilter = numberArg(opt, v, { min: 0, integer: true }); break;
      case 'q': out.quiet = true; out.verbose = 0; break;
      case 'v': out.verbose++; out.quiet = false; break;
      case 'I': out.leafAddresses = true; break;
      case 'L': out.listEvents = true; break;
      case 'u': out.describe = v; break;
      case 'r': out.root = v; break;
      case 'T': out.top = true; break;
      case 'f': topOption(out, opt, v); break;
      case 'json': out.json = true; break;
      case 'memory-limit': out.memoryLimit = numberArg(opt, v, { min: 1 }); break;
      case 'help': out.help = true; break;
      default: throw new UsageError(`option ${opt} ${REFUSED[t.name!] ?? 'is not supported'}`);
    }
  }
  // -g writes into -D's directory, wherever -D stands.
  if (out.outputs.gprof !== undefined) out.outputs.gprof = out.gprofDir;
  if (out.analyze !== undefined && sawCpuOption) out.cpuFilter = cpus;
  if (unusedShaping.length > 0 && out.pmcs.length > 0) {
    out.warnings.push(`${[...new Set(unusedShaping)].join(' ')} after the last PMC option has no effect: these options apply to the -p/-s/-P/-S options that follow them`);
  }
  validate(out);
  return out;
}

/** -f: top mode's options, pmcstat's `threshold=<percent>` and `skiplink=0|1`. */
function topOption(out: PmcstatArgs, opt: string, text: string): void {
  const m = /^(threshold|skiplink)=(.*)$/.exec(text);
  if (!m) throw new UsageError(`option ${opt}: "${text}" is not threshold=<percent> or skiplink=0|1`);
  if (m[1] === 'threshold') out.topThreshold = numberArg(`${opt} threshold`, m[2], { min: 0 });
  else if (m[2] === '0' || m[2] === '1') out.topSkipLink = m[2] === '1';
  else throw new UsageError(`option ${opt}: skiplink takes 0 or 1, not "${m[2]}"`);
}

/** The combinations pmcstat.c refuses, with its messages. */
function validate(a: PmcstatArgs): void {
  if (a.help || a.listEvents || a.describe !== undefined) return;
  const hasProcess = a.pmcs.some((p) => p.mode === PmcMode.TC || p.mode === PmcMode.TS);
  const hasSampling = a.pmcs.some((p) => p.mode === PmcMode.TS || p.mode === PmcMode.SS);
  const hasCounting = a.pmcs.some((p) => p.mode === PmcMode.TC || p.mode === PmcMode.SC);
  if (a.logFile !== undefined && a.analyze !== undefined) throw new UsageError('options -O and -R are mutually exclusive.');
  if (a.top && a.analyze === undefined && !hasSampling) throw new UsageError('option -T needs a sampling PMC (-P or -S), or a log (-R).');
  if (a.analyze !== undefined) {
    if (a.pmcs.length > 0 || a.command.length > 0 || a.targets.length > 0) {
      throw new UsageError('option -R cannot be combined with PMC specifications, -t or a command line.');
    }
    return;
  }
  if (a.pmcs.length === 0) throw new UsageError('at least one of -p, -s, -P or -S is required (or -R to analyze a log).');
  if (hasProcess && a.command.length === 0 && a.targets.length === 0) {
    throw new UsageError('options -P and -p require a target process or a command line.');
  }
  if (!hasProcess && a.targets.length > 0) throw new UsageError('option -t requires a process-mode PMC (-p or -P).');
  if (hasCounting && hasSampling && a.logFile === undefined) {
    throw new UsageError('option -O is required if counting and sampling PMCs are specified together.');
  }
  if (a.pmcs.some((p) => p.logProcExit || p.logProcCsw) && a.logFile === undefined) {
    throw new UsageError('options -E and -W need a log file (-O).');
  }
  for (const p of a.pmcs) if ((p.mode === PmcMode.SC || p.mode === PmcMode.SS) && p.cpus.length === 0) throw new UsageError(`no CPUs for "${p.spec}"`);
}

export const PMCSTAT_USAGE = `usage: pmcstat [options] [--] [command [args]]
 PMCs (each may repeat; toggles apply to the PMC options after them):
  -p spec      process-mode counting PMC        -s spec   system-mode counting PMC (per CPU)
  -P spec      process-mode sampling PMC        -S spec   system-mode sampling PMC (per CPU)
  -c cpus      CPUs for following system PMCs ("*" or 0,2-3)
  -d           toggle counting/sampling of descendants of the target
  -C           toggle cumulative counts         -n rate   events per sample (default 65536)
  --freq hz    sample at a frequency instead    -N        toggle call chains (default on)
  -U           toggle user call chains in kernel samples
  -E           toggle per-process counts at exit (needs -O)
  -W           toggle per-context-switch counts (needs -O)
 Targets and timing:
  -t pid|re    attach to a process id or to processes whose name matches the regex
  -w secs      print counts every secs seconds  -l secs   stop after secs seconds
  --grace secs after INT, TERM or HUP, how long the command may take to exit
               before it is killed (default 5); a second signal kills it at once
 Output:
  -o file      counting output (default stderr) --json    counts as one JSON object on stdout
  -O file      write the sampling log           -z depth  call graph depth (default 16)
 Analysis (of a log with -R file, or of the recording when sampling):
${OUTPUTS.map((o: OutputFormat) => `  ${`${o.option} ${o.value ?? ''}`.padEnd(24)} ${o.description}`).join('\n')}
  --memory-limit MiB       memory the analysis' tables may take (default 512)
 Top mode and more:
  -T           top mode: the hottest functions, live, refreshed every -w secs (default 1)
               keys: p next PMC, m merge the per-CPU PMCs of one event (on) or not,
               n callers or flat view, c then a or d: accumulated or delta (each
               refresh's samples), f skip links in caller chains, P per process,
               space pause, q quit
  -f opt       top mode: threshold=<percent> (default 0.5), skiplink=0|1
  -L           list the events                  -u spec   describe an event
  -I           sampled PCs as addresses at the top of call chains
  -r dir       root of the executables' paths   -k file   kernel symbols (a kallsyms copy)
  -i tid       samples of one thread only       -q / -v   say less / more
 event spec: name[,usr|,os], e.g. task-clock  page-faults,usr  sched:sched_switch  msr/tsc/
`;
