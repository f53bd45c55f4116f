// The tools as users run them: tsc's output (dist/src) bundled into dist/bin, one file per tool
// plus chunks they share or load on demand (analysis, top mode, event listing), because Node 20
// loads each ES module separately, at about 0.5 ms of CPU apiece, and a sampling run needs ~90.
// npm packages stay outside (resolved from node_modules as before); so do Node's own modules.
// kallsyms-thread is an entry of its own: it starts a worker thread on its own file.
export default {
  input: {
    pmcstat: 'dist/src/cli/pmcstat.js',
    pmccontrol: 'dist/src/cli/pmccontrol.js',
    pmcd: 'dist/src/cli/pmcd.js',
    'kallsyms-thread': 'dist/src/report/kallsyms-thread.js',
  },
  external: (id) => !id.startsWith('.') && !id.startsWith('/'),
  // Entries keep their own code (no re-exporting facade): the worker runs the file its code is in.
  preserveEntrySignatures: 'allow-extension',
  // CommonJS: Node then starts without its ES module loader, and a require() of node:fs or node:process
  // does not build an ES module view of every export (each getter run: fs streams, allowed flags...).
  output: { dir: 'dist/bin', format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name].cjs', dynamicImportInCjs: false },
};
