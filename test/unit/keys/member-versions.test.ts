import { expect } from 'chai';
import { describeMemberVersions, memberAgreement } from '../../../src/keys/member-versions';

describe('memberAgreement (scheduled rotation across HSMs)', () => {
  it('agrees only when every member is connected and shows the same active version', () => {
    expect(memberAgreement([{ id: 'a', version: 3 }, { id: 'b', version: 3 }])).to.deep.equal({ agreed: true, version: 3 });
    expect(memberAgreement([{ id: 'a', version: 1 }])).to.deep.equal({ agreed: true, version: 1 });
  });

  it('defers on different versions, a missing key or a disconnected member, naming the highest version', () => {
    const split = memberAgreement([{ id: 'a', version: 1 }, { id: 'b', version: 2 }]);
    expect(split).to.include({ agreed: false, highest: 2 });
    expect(memberAgreement([{ id: 'a', version: 2 }, { id: 'b' }])).to.include({ agreed: false, highest: 2 });
    expect(memberAgreement([{ id: 'a', version: 2 }, { id: 'b', disconnected: true }])).to.include({ agreed: false });
    expect(memberAgreement([{ id: 'a', disconnected: true }])).to.include({ agreed: false });
    expect(memberAgreement([{ id: 'a' }, { id: 'b' }])).to.include({ agreed: false, highest: 0 });
  });

  it('describes members by id and version only', () => {
    expect(describeMemberVersions([{ id: 'hsm-a', version: 1 }, { id: 'hsm-b' }, { id: 'hsm-c', disconnected: true }])).to.equal('hsm-a=v1, hsm-b=missing, hsm-c=disconnected');
  });
});
