// pmcstat -L and -u: what can be measured here. -L lists the event names of
// every available class (and says why a class is unavailable); -u describes
// the event a specifier resolves to (class, event code, capabilities), or,
// when it resolves to none, the event names that contain it.
import { Libpmc, PmcCaps, PmcError } from '../lib/index.js';
import { PmcOp } from '../module/pmc-types.js';

/** Capability bits by name, as pmccontrol and pmc_capabilities(3) name them. */
function capabilityNames(caps: number): string {
  const names = Object.entries(PmcCaps)
    .filter(([, bit]) => (caps & bit) !== 0)
    .map(([name]) => name);
  return names.length > 0 ? names.join(' ') : 'none';
}

export async function listEvents(out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const lib = await Libpmc.init();
  try {
    for (const c of await lib.eventClasses()) {
      if (!c.available) {
        out.write(`${c.name}\t(unavailable: ${c.unavailableReason ?? 'unknown reason'})\n`);
        continue;
      }
      out.write(`${c.name}\n`);
      for (const name of await lib.eventNamesOfClass(c.classId)) out.write(`\t${name}\n`);
    }
  } finally {
    await lib.close();
  }
  return 0;
}

export async function describeEvent(spec: string, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const lib = await Libpmc.init();
  try {
    const event = spec.split(',')[0];
    try {
      const r = await lib.client.call(PmcOp.RESOLVEEVENT, { spec: event });
      const cls = (await lib.eventClasses()).find((c) => c.classId === r.classId);
      const config = r.md ? `, perf config 0x${r.md.config.toString(16)}` : '';
      out.write(`${r.eventName}: class ${r.className}, event code 0x${r.event.toString(16)}${config}\n`);
      if (cls) {
        const sampling = (cls.caps & PmcCaps.INTERRUPT) !== 0 ? 'counting and sampling' : 'counting only';
        out.write(`  ${sampling}; class capabilities: ${capabilityNames(cls.caps)}; ${cls.num} rows per CPU\n`);
      }
      out.write(`  specifier qualifiers: ${r.caps & PmcCaps.USER ? 'user mode only for this caller' : ',usr (user mode) and ,os (kernel mode)'}\n`);
      return 0;
    } catch (e) {
      if (!(e instanceof PmcError)) throw e;
      const needle = event.toLowerCase();
      const matches: string[] = [];
      for (const c of await lib.eventClasses()) {
        if (!c.available) continue;
        for (const name of await lib.eventNamesOfClass(c.classId)) if (name.toLowerCase().includes(needle)) matches.push(`${c.name}\t${name}`);
      }
      if (matches.length === 0) throw e;
      out.write(`"${spec}" names no event (${e.code}); events whose names contain it:\n${matches.map((m) => `\t${m}\n`).join('')}`);
      return 0;
    }
  } finally {
    await lib.close();
  }
}
