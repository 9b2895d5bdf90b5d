import { expect } from 'chai';
import { LIST_ALIASES_LIMIT, LIST_KEYS_LIMIT, page } from '../../../src/kms-api/operations/paging';

describe('KMS API paging (Limit and Marker)', () => {
  const items = Array.from({ length: 250 }, (_, i) => i);

  it("defaults to AWS's page sizes: ListKeys 100, ListAliases 50", () => {
    expect(page(items, {}, LIST_KEYS_LIMIT)).to.deep.equal({ items: items.slice(0, 100), next: '100' });
    expect(page(items, {}, LIST_ALIASES_LIMIT)).to.deep.equal({ items: items.slice(0, 50), next: '50' });
  });

  it('takes up to the maximum, and the Marker where the last page ended', () => {
    expect(page(items, { Limit: 100, Marker: '200' }, LIST_ALIASES_LIMIT)).to.deep.equal({ items: items.slice(200) });
    expect(() => page(items, { Limit: 101 }, LIST_ALIASES_LIMIT)).to.throw('Limit must be an integer in 1-100');
    expect(page(items, { Limit: 1000 }, LIST_KEYS_LIMIT)).to.deep.equal({ items });
  });
});
