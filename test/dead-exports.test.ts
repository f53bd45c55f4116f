// No dead exports: every function, class, enum or constant that a file of
// src/ exports is imported by another file (of src/, test/ or bench/). An
// export only its own file uses should not be exported; one nobody uses
// should not exist. Types are exempt (an exported signature's types are
// exported with it), and so are the public APIs: lib/index.ts (libpmc) and
// report/index.ts (the analysis).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PUBLIC_APIS = ['src/lib/index.ts', 'src/report/index.ts'];
/** The op table is the protocol's definition (docs/protocol.md), read as a whole. */
const KEPT = ['src/module/op-table.ts: OP_TABLE'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === 'results' || e.name === 'fixtures' ? [] : sourceFiles(join(dir, e.name))) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function exported(node: ts.Statement): boolean {
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

test('dead exports: every value src/ exports is imported elsewhere', () => {
  const files = ['src', 'test', 'bench'].flatMap((d) => sourceFiles(join(ROOT, d)));
  const exports = new Map<string, Set<string>>();
  /** Per file, the names others import from it; '*' for a namespace import or a dynamic import (its importer's text is searched). */
  const imported = new Map<string, Set<string>>();
  const dynamicImporters = new Map<string, string[]>();
  const use = (file: string, name: string): void => {
    if (!imported.has(file)) imported.set(file, new Set());
    imported.get(file)!.add(name);
  };
  const target = (from: string, spec: string): string | undefined => (spec.startsWith('.') ? resolve(dirname(from), spec).replace(/\.js$/, '.ts') : undefined);
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false);
    const names = new Set<string>();
    for (const st of sf.statements) {
      if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier)) {
        const t = target(file, st.moduleSpecifier.text);
        const bindings = st.importClause?.namedBindings;
        if (t && bindings && ts.isNamespaceImport(bindings)) use(t, '*');
        if (t && bindings && ts.isNamedImports(bindings)) for (const el of bindings.elements) use(t, (el.propertyName ?? el.name).text);
      } else if (ts.isExportDeclaration(st)) {
        const t = st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier) ? target(file, st.moduleSpecifier.text) : undefined;
        if (t && !st.exportClause) use(t, '*');
        if (st.exportClause && ts.isNamedExports(st.exportClause)) {
          for (const el of st.exportClause.elements) {
            if (t) use(t, (el.propertyName ?? el.name).text);
            else if (!st.isTypeOnly && !el.isTypeOnly) names.add(el.name.text);
          }
        }
      } else if (exported(st) && !ts.isInterfaceDeclaration(st) && !ts.isTypeAliasDeclaration(st)) {
        if (ts.isVariableStatement(st)) for (const d of st.declarationList.declarations) ts.isIdentifier(d.name) && names.add(d.name.text);
        else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isEnumDeclaration(st)) && st.name) names.add(st.name.text);
      }
    }
    for (const m of text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)) {
      const t = target(file, m[1]);
      if (t) dynamicImporters.set(t, [...(dynamicImporters.get(t) ?? []), text]);
    }
    exports.set(file, names);
  }
  const dead: string[] = [];
  for (const [file, names] of exports) {
    const rel = relative(ROOT, file);
    if (!rel.startsWith('src/') || PUBLIC_APIS.includes(rel)) continue;
    const used = imported.get(file) ?? new Set();
    if (used.has('*')) continue;
    const dynamic = dynamicImporters.get(file) ?? [];
    for (const name of names) {
      if (used.has(name) || KEPT.includes(`${rel}: ${name}`)) continue;
      if (dynamic.some((text) => new RegExp(`\\b${name}\\b`).test(text))) continue;
      dead.push(`${rel}: ${name}`);
    }
  }
  assert.ok(exports.size > 100, `read ${exports.size} files`);
  assert.deepEqual(dead, [], 'exported but imported nowhere: remove it, or its export keyword if its own file uses it');
});
