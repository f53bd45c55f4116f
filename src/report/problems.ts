// What the analysis could not read (files, kernel symbols, JIT maps), for
// --stats. A hostile or unlucky log can name thousands of missing files with
// paths of 64 KiB: the list keeps the first few, each path and reason cut to
// a readable length, and counts the rest.

const MAX_LISTED_PROBLEMS = 20;
const MAX_TEXT = 300;

export interface Problem {
  path: string;
  reason: string;
}

/** `s`, or its start and end around a note of its length when it is longer than `max`. */
function shorten(s: string, max = MAX_TEXT): string {
  if (s.length <= max) return s;
  const keep = (max - 40) >> 1;
  return `${s.slice(0, keep)}...(${s.length} characters)...${s.slice(-keep)}`;
}

export class ProblemList {
  private readonly listed = new Map<string, string>();
  /** Problems not listed, beyond the first MAX_LISTED_PROBLEMS. */
  omitted = 0;

  add(path: string, reason: string): void {
    const p = shorten(path);
    if (this.listed.has(p)) return;
    if (this.listed.size >= MAX_LISTED_PROBLEMS) {
      this.omitted++;
      return;
    }
    // Error messages repeat the path: say it once.
    this.listed.set(p, shorten(reason.split(`${path}: `).join('').split(path).join('(the path)')));
  }

  /** The reason listed for `path`. */
  get(path: string): string | undefined {
    return this.listed.get(shorten(path));
  }

  get entries(): Problem[] {
    return [...this.listed].map(([path, reason]) => ({ path, reason }));
  }
}
