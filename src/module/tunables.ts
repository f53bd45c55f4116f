// The module's boot-time tunables (kern.hwpmc.* and
// security.bsd.unprivileged_syspmcs), read once when the module starts, from
// a config file and then the environment, and range-checked as
// pmc_initialize() does: a value out of range gets a message and the default.
import { readFileSync } from 'node:fs';
import { PMC_CALLCHAIN_DEPTH_MAX } from '../pmc-common.js';

export interface Tunables {
  /** Samples per CPU sample buffer (kern.hwpmc.nsamples). */
  nsamples: number;
  /** Deepest call chain recorded (kern.hwpmc.callchaindepth). */
  callchaindepth: number;
  /** Size of one log buffer in KiB (kern.hwpmc.logbuffersize). */
  logbuffersize: number;
  /** Log buffers per owner (kern.hwpmc.nbuffers). */
  nbuffers: number;
  /** Allow system-mode PMCs without privilege (security.bsd.unprivileged_syspmcs). */
  unprivileged_syspmcs: boolean;
  /**
   * Allow unprivileged owners kernel-mode counts, samples and call-chain
   * frames (tspmc; kernel addresses are secrets under KASLR). Off: their
   * PMCs count and sample user mode only.
   */
  unprivileged_kernel_callchains: boolean;
}

// nsamples: hwpmc sweeps its sample buffers every clock tick (1 ms) and
// defaults to 256; ours are swept every 10 ms tick and a sample may wait one
// more tick (time order across CPUs), so 1024 holds 50k samples/s per CPU.
export const DEFAULT_TUNABLES: Readonly<Tunables> = {
  nsamples: 1024,
  callchaindepth: 128,
  logbuffersize: 256,
  nbuffers: 64,
  unprivileged_syspmcs: false,
  unprivileged_kernel_callchains: false,
};

type BooleanTunable = 'unprivileged_syspmcs' | 'unprivileged_kernel_callchains';
const isBoolean = (k: keyof Tunables): k is BooleanTunable => typeof DEFAULT_TUNABLES[k] === 'boolean';

interface Range {
  min: number;
  max: number;
}

const RANGES: Record<Exclude<keyof Tunables, BooleanTunable>, Range> = {
  nsamples: { min: 1, max: 65535 },
  callchaindepth: { min: 1, max: PMC_CALLCHAIN_DEPTH_MAX },
  logbuffersize: { min: 1, max: 16 * 1024 },
  nbuffers: { min: 1, max: 4096 },
};

/** Config-file keys FreeBSD users know, and our environment variables. */
const KEYS: Record<keyof Tunables, { sysctl: string; env: string }> = {
  nsamples: { sysctl: 'kern.hwpmc.nsamples', env: 'TSPMC_NSAMPLES' },
  callchaindepth: { sysctl: 'kern.hwpmc.callchaindepth', env: 'TSPMC_CALLCHAINDEPTH' },
  logbuffersize: { sysctl: 'kern.hwpmc.logbuffersize', env: 'TSPMC_LOGBUFFERSIZE' },
  nbuffers: { sysctl: 'kern.hwpmc.nbuffers', env: 'TSPMC_NBUFFERS' },
  unprivileged_syspmcs: { sysctl: 'security.bsd.unprivileged_syspmcs', env: 'TSPMC_UNPRIVILEGED_SYSPMCS' },
  unprivileged_kernel_callchains: { sysctl: 'kern.hwpmc.unprivileged_kernel_callchains', env: 'TSPMC_UNPRIVILEGED_KERNEL_CALLCHAINS' },
};

export const DEFAULT_CONFIG_FILE = '/etc/tspmc.conf';

/** `name = value` lines; `#` starts a comment. Names are the sysctl names or the bare tunable names. */
export function parseConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const m = /^([\w.]+)\s*=\s*"?([^"]*)"?$/.exec(line);
    if (m) out.set(m[1], m[2].trim());
  }
  return out;
}

export interface TunableSources {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  warn?: (message: string) => void;
}

export function loadTunables(sources: TunableSources = {}): Tunables {
  const env = sources.env ?? process.env;
  const warn = sources.warn ?? ((m: string) => process.stderr.write(`tspmc: ${m}\n`));
  const path = sources.configFile ?? env.TSPMC_CONFIG ?? DEFAULT_CONFIG_FILE;
  let file = new Map<string, string>();
  try {
    file = parseConfig(readFileSync(path, 'utf8'));
  } catch (e) {
    if (sources.configFile !== undefined || env.TSPMC_CONFIG !== undefined) warn(`cannot read config file ${path}: ${(e as Error).message}`);
  }

  const t: Tunables = { ...DEFAULT_TUNABLES };
  for (const key of Object.keys(KEYS) as (keyof Tunables)[]) {
    const { sysctl, env: envName } = KEYS[key];
    const text = env[envName] ?? file.get(sysctl) ?? file.get(key);
    if (text === undefined) continue;
    const value = Number(text);
    const from = env[envName] !== undefined ? envName : `${path}: ${sysctl}`;
    if (isBoolean(key)) {
      if (value === 0 || value === 1) t[key] = value === 1;
      else warn(`${from}: "${text}" is not 0 or 1 - using ${Number(DEFAULT_TUNABLES[key])}`);
      continue;
    }
    const { min, max } = RANGES[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      // pmc_initialize() replaces a bad call chain depth by the maximum, everything else by its default.
      const fallback = key === 'callchaindepth' && Number.isFinite(value) ? max : DEFAULT_TUNABLES[key];
      warn(`${from}: "${text}" out of range [${min}, ${max}] - using ${fallback}`);
      t[key] = fallback;
    } else {
      t[key] = value;
    }
  }
  return t;
}
