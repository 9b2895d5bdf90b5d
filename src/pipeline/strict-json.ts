/**
 * JSON.parse, refusing objects with a duplicate member name. JSON leaves duplicates undefined and
 * parsers disagree (first vs last wins); a proxy that logs or authorizes one value and encrypts
 * another would be open to parser-differential tricks, so such a body is simply invalid.
 */
export function parseStrictJson(text: string): { ok: true; value: unknown } | { ok: false; reason: 'syntax' | 'duplicate-key' } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'syntax' };
  }
  return hasDuplicateKey(text) ? { ok: false, reason: 'duplicate-key' } : { ok: true, value };
}

/** Index of the quote closing a string that starts at `from`; indexOf skips long Base64 values natively. */
function closingQuote(text: string, from: number): number {
  let j = text.indexOf('"', from);
  for (;;) {
    let backslashes = 0;
    while (text.charCodeAt(j - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
}

/** Scans text already accepted by JSON.parse; iterative, so nesting depth cannot overflow the stack. */
function hasDuplicateKey(text: string): boolean {
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const j = closingQuote(text, i + 1);
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        // Only a key with an escape needs decoding ("a" and "\u0061" are the same name).
        const raw = text.slice(i + 1, j);
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (top.has(key)) return true;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
      expectKey = false;
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
  }
  return false;
}
