// Where a built tree's pmcstat is, for the benches' A/B of two trees (--baseline).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** `root`'s pmcstat: its bundle (npm run build; an ES module bundle in trees of 21e9c37), or tsc's output in trees built before the bundles. */
export function pmcstatOf(root: string): string | undefined {
  return ['dist/bin/pmcstat.cjs', 'dist/bin/pmcstat.js', 'dist/src/cli/pmcstat.js'].map((p) => join(root, p)).find((p) => existsSync(p));
}
