// A dynamic PMU's sysfs vocabulary: format/<term> files say which bits of
// config/config1/config2 a term fills ("config:0-7,32-35"), events/<alias>
// files are term lists ("event=0x3c,umask=0x0,inv"). This file parses both
// and packs term values into the three config words.
import { PmcError } from '../pmc-error.js';

export type ConfigWord = 'config' | 'config1' | 'config2';

export const CONFIG_WORDS: readonly ConfigWord[] = ['config', 'config1', 'config2'];

export interface ConfigWords {
  config: bigint;
  config1: bigint;
  config2: bigint;
}

export interface FormatField {
  name: string;
  word: ConfigWord;
  /** Bit positions in ascending order: value bit i goes to bits[i], as perf packs it. */
  bits: readonly number[];
  /** The file's text, e.g. "config:0-7,32-35". */
  spec: string;
}

/** One `term` or `term=value` of a term list; `value` is undefined for a bare term, '?' for a placeholder. */
export interface Term {
  name: string;
  value: bigint | '?' | undefined;
  /** The text as written, for messages. */
  text: string;
}

const FORMAT_RE = /^(config[12]?):([0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*)$/;

/** Parses one format file's text; `where` names it in errors. */
export function parseFormat(name: string, text: string, where: string): FormatField {
  const spec = text.trim();
  const m = FORMAT_RE.exec(spec);
  if (!m) throw new PmcError('EINVAL', `${where}: expected "config|config1|config2:<bits>[,<bits>...]", found "${spec}"`);
  const positions = new Set<number>();
  for (const range of m[2]!.split(',')) {
    const dash = range.indexOf('-');
    const lo = Number(dash < 0 ? range : range.slice(0, dash));
    const hi = dash < 0 ? lo : Number(range.slice(dash + 1));
    if (hi < lo || hi > 63) throw new PmcError('EINVAL', `${where}: bit range "${range}" is not within 0-63`);
    for (let b = lo; b <= hi; b++) positions.add(b);
  }
  return { name, word: m[1] as ConfigWord, bits: [...positions].sort((a, b) => a - b), spec };
}

const VALUE_RE = /^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/;

/**
 * Parses "a=1,b=0x2,c" (the inside of pmu/.../ or an events/* file).
 * Values are decimal or 0x hex; `?` marks a value the user must supply.
 */
export function parseTerms(text: string, where: string): Term[] {
  const body = text.trim();
  if (body === '') return [];
  return body.split(',').map((raw) => {
    const t = raw.trim();
    const eq = t.indexOf('=');
    const name = (eq < 0 ? t : t.slice(0, eq)).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
      throw new PmcError('EINVAL', `${where}: term "${t}" should be name or name=value`);
    }
    if (eq < 0) return { name, value: undefined, text: t };
    const v = t.slice(eq + 1).trim();
    if (v === '?') return { name, value: '?', text: t };
    if (!VALUE_RE.test(v)) {
      throw new PmcError('EINVAL', `${where}: value of term "${name}" should be a decimal or 0x hex number, found "${v}"`);
    }
    return { name, value: BigInt(v), text: t };
  });
}

export function emptyConfig(): ConfigWords {
  return { config: 0n, config1: 0n, config2: 0n };
}

/** Writes `value` into the field's bits of `words` (clearing what was there); EINVAL if it does not fit. */
export function packField(words: ConfigWords, field: FormatField, value: bigint, where: string): void {
  const width = field.bits.length;
  if (value < 0n || value >> BigInt(width) !== 0n) {
    const max = (1n << BigInt(width)) - 1n;
    throw new PmcError(
      'EINVAL',
      `${where}: value 0x${value.toString(16)} of term "${field.name}" does not fit its ${width}-bit field ${field.word}:${rangesText(field.bits)} (max 0x${max.toString(16)})`,
    );
  }
  let word = words[field.word];
  for (let i = 0; i < width; i++) {
    const bit = 1n << BigInt(field.bits[i]!);
    word = (value >> BigInt(i)) & 1n ? word | bit : word & ~bit;
  }
  words[field.word] = word;
}

/** The field's value as currently packed in `words`. */
export function unpackField(words: ConfigWords, field: FormatField): bigint {
  const word = words[field.word];
  let value = 0n;
  for (let i = 0; i < field.bits.length; i++) {
    if ((word >> BigInt(field.bits[i]!)) & 1n) value |= 1n << BigInt(i);
  }
  return value;
}

/** "0-7,32-35" for bit positions [0..7, 32..35]. */
function rangesText(bits: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < bits.length; ) {
    let j = i;
    while (j + 1 < bits.length && bits[j + 1] === bits[j]! + 1) j++;
    parts.push(i === j ? `${bits[i]}` : `${bits[i]}-${bits[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** What a term list is read against: a PMU's format fields and event aliases. */
export interface TermVocabulary {
  readonly name: string;
  formats?(): FormatField[];
  aliasTerms?(alias: string): Term[] | undefined;
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * Packs a term list into config words. A term is a format field (bare = 1),
 * config/config1/config2 (the whole word), or a bare event alias of the PMU,
 * which expands in place. `sysfsText` marks an events/* file's own terms: they
 * may hold `?` placeholders and never name other aliases. Returns the
 * placeholder terms still unset.
 */
export function encodeTerms(
  pmu: TermVocabulary,
  terms: readonly Term[],
  where: string,
  sysfsText = false,
  words: ConfigWords = emptyConfig(),
  pending = new Set<string>(),
): { words: ConfigWords; pending: Set<string> } {
  const formats = new Map((pmu.formats?.() ?? []).map((f) => [f.name, f]));
  for (const t of terms) {
    if (t.value === '?' && !sysfsText) {
      throw new PmcError('EINVAL', `${where}: term "${t.name}" needs a number, not "?"`);
    }
    if ((CONFIG_WORDS as readonly string[]).includes(t.name)) {
      if (typeof t.value !== 'bigint') throw new PmcError('EINVAL', `${where}: term "${t.name}" needs a value (${t.name}=N)`);
      if (t.value > U64_MAX) throw new PmcError('EINVAL', `${where}: value of term "${t.name}" does not fit 64 bits`);
      words[t.name as ConfigWord] = t.value;
      continue;
    }
    const field = formats.get(t.name);
    if (field) {
      if (t.value === '?') pending.add(t.name);
      else {
        packField(words, field, t.value ?? 1n, where);
        pending.delete(t.name);
      }
      continue;
    }
    const aliasTerms = t.value === undefined && !sysfsText ? pmu.aliasTerms?.(t.name) : undefined;
    if (aliasTerms) {
      encodeTerms(pmu, aliasTerms, `${where} (event ${t.name})`, true, words, pending);
      continue;
    }
    const known = [...formats.keys(), ...CONFIG_WORDS];
    throw new PmcError(
      'EINVAL',
      `${where}: "${t.name}" is neither a format term nor an event of PMU ${pmu.name} (terms: ${known.join(', ')})`,
    );
  }
  return { words, pending };
}
