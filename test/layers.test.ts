// The layers' dependency rule (docs/ARCHITECTURE.md), checked on the source:
// every import, static or dynamic, points down or within its layer, and the
// module reaches md only through the seam (md/class-dep.ts, md/sample-sink.ts),
// except module/load.ts, which wires the machine's md into the module as
// hwpmc's MD initialization does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** What each layer may import ('.' = the files at the top of src/: pmc-error, pmc-common, ffi). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  cli: ['cli', 'lib', 'report', 'daemon', 'module', 'log', 'ipc', 'os', '.'],
  daemon: ['daemon', 'module', 'ipc', 'os', '.'],
  lib: ['lib', 'module', 'log', 'ipc', 'os', '.'],
  report: ['report', 'log', 'os', '.'],
  module: ['module', 'md', 'log', 'os', '.'],
  md: ['md', 'os', '.'],
  log: ['log', '.'],
  ipc: ['ipc', 'os', '.'],
  os: ['os', '.'],
  '.': ['.'],
};

/** The md files the module may import: the contract between the two (pmc_classdep, the sample sink). */
const MD_SEAM = ['md/class-dep.ts', 'md/sample-sink.ts'];
const MD_WIRING = 'module/load.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function layerOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  return parts.length === 1 ? '.' : parts[0];
}

/** Relative specifiers of `import ... from '...'`, `export ... from '...'` and `import('...')`. */
function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.[^']+)'/gm)) out.push(m[1]);
  return out;
}

test('layers: every import in src/ points down (or within its layer); module reaches md only through the seam', () => {
  const files = sourceFiles(SRC);
  assert.ok(files.length > 50, `found ${files.length} files under ${SRC}`);
  const wrong: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    const allowed = MAY_IMPORT[from];
    const rel = relative(SRC, file);
    if (!allowed) {
      wrong.push(`${rel}: layer ${from} is not in the layer table`);
      continue;
    }
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      const to = layerOf(target);
      const targetRel = relative(SRC, target);
      if (!allowed.includes(to)) wrong.push(`${rel} imports ${targetRel}: ${from} may not use ${to}`);
      else if (from === 'module' && to === 'md' && rel !== MD_WIRING && !MD_SEAM.includes(targetRel)) {
        wrong.push(`${rel} imports ${targetRel}: the module sees md only through ${MD_SEAM.join(' and ')}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('layers: the import scanner sees static, re-exported and dynamic imports', () => {
  const text = "import { a } from '../md/x.js';\nexport { b } from './y.js';\nimport type { C } from '../log/z.js';\nconst m = await import('../report/w.js');\nimport './side.js';\nimport n from 'node:fs';";
  assert.deepEqual(importsOf(text), ['../md/x.js', './y.js', '../log/z.js', '../report/w.js', './side.js']);
});
