// Subsequence fuzzy matching for quick open, scored like most editors:
// consecutive letters, word starts and matches in the file name count more.

export interface FuzzyResult {
  path: string;
  score: number;
  positions: number[];
}

function isBoundary(s: string, i: number): boolean {
  if (i === 0) return true;
  const prev = s[i - 1];
  const cur = s[i];
  if (prev === '/' || prev === '_' || prev === '-' || prev === '.' || prev === ' ') return true;
  return prev === prev.toLowerCase() && cur !== cur.toLowerCase();
}

export function fuzzyScore(query: string, path: string): FuzzyResult | null {
  const q = query.replace(/\s+/g, '').toLowerCase();
  if (!q) return { path, score: 0, positions: [] };
  const lower = path.toLowerCase();
  const nameStart = path.lastIndexOf('/') + 1;

  // Prefer a match that lies entirely in the file name.
  const tryFrom = (start: number): number[] | null => {
    const pos: number[] = [];
    let j = start;
    for (let i = 0; i < q.length; i++) {
      const k = lower.indexOf(q[i], j);
      if (k < 0) return null;
      pos.push(k);
      j = k + 1;
    }
    return pos;
  };
  const positions = tryFrom(nameStart) ?? tryFrom(0);
  if (!positions) return null;

  let score = 0;
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i];
    score += 1;
    if (p >= nameStart) score += 2;
    if (isBoundary(path, p)) score += 3;
    if (i > 0 && positions[i - 1] === p - 1) score += 4;
  }
  if (lower.slice(nameStart).startsWith(q)) score += 10;
  if (lower.slice(nameStart) === q) score += 10;
  score -= path.length * 0.02;
  score -= (path.split('/').length - 1) * 0.3;
  return { path, score, positions };
}

export function fuzzyFilter(query: string, paths: string[], limit = 60): FuzzyResult[] {
  const out: FuzzyResult[] = [];
  for (const p of paths) {
    const r = fuzzyScore(query, p);
    if (r) out.push(r);
  }
  out.sort((a, b) => b.score - a.score || a.path.localeCompare(b.path));
  return out.slice(0, limit);
}
