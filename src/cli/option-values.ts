// getopt takes the word after an option that needs a value as that value,
// even when it starts with a dash (`-c -1`); node's parseArgs refuses such a
// value as ambiguous. Joining the two (`-c-1`) gives parseArgs getopt's reading,
// so a bad value is reported as a bad value.
export function joinOptionValues(args: readonly string[], takesValue: (letter: string) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    out.push(a);
    if (a === '--' || !a.startsWith('-') || a.startsWith('--') || a.length < 2) continue;
    for (let j = 1; j < a.length; j++) {
      if (!takesValue(a[j])) continue;
      // An empty value stays a word of its own: joined, it would vanish.
      if (j === a.length - 1 && i + 1 < args.length && args[i + 1] !== '') out[out.length - 1] = a + args[++i];
      break;
    }
  }
  return out;
}
