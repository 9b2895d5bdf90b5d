import { expect } from 'chai';
import { parseStrictJson } from '../../../src/pipeline/strict-json';

describe('strict JSON (duplicate member names)', () => {
  const duplicates = (text: string) => parseStrictJson(text);
  it('accepts ordinary documents, including escaped quotes and backslashes in strings', () => {
    for (const text of ['{"a":1,"b":{"a":2}}', '{"a\\"b":1,"a\\"c":2}', '{"k":"\\\\","l":"\\\\\\"","m":[{"a":1},{"a":2}]}', '[{"a":1,"b":"x\\"y"}]']) {
      expect(duplicates(text).ok, text).to.equal(true);
    }
  });
  it('refuses a repeated member name at any depth, however it is escaped', () => {
    for (const text of ['{"a":1,"a":2}', '{"x":{"k":"v","k":"w"}}', '{"a\\\\":1,"a\\\\":2}', '{"s":"\\"quoted\\"","a":1,"\\u0061":2}', '[{"p":"\\\\\\"","p":3}]']) {
      const result = duplicates(text);
      expect(result, text).to.deep.equal({ ok: false, reason: 'duplicate-key' });
    }
  });
  it('reports syntax errors as such', () => {
    expect(duplicates('{"a":')).to.deep.equal({ ok: false, reason: 'syntax' });
  });
});
