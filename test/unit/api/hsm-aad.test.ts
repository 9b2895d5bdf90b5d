import { expect } from 'chai';
import { buildHsmAad } from '../../../src/api/hsm-aad';

describe('HSM AAD layout', () => {
  it('is u16be(len aad) || aad || u8(len md) || md', () => {
    const out = buildHsmAad(Buffer.from('abc'), Buffer.from([0x01]));
    expect(out.toString('hex')).to.equal('0003' + '616263' + '01' + '01');
  });

  it('writes zero lengths for absent fields', () => {
    expect(buildHsmAad(Buffer.alloc(0), Buffer.alloc(0)).toString('hex')).to.equal('000000');
  });

  it('keeps AAD and metadata apart: moving metadata into the AAD changes the bytes', () => {
    const md = Buffer.from([0x01]);
    expect(buildHsmAad(Buffer.alloc(0), md).equals(buildHsmAad(md, Buffer.alloc(0)))).to.equal(false);
  });

  it('encodes an 8192-byte AAD length big-endian and refuses what two bytes cannot hold', () => {
    const out = buildHsmAad(Buffer.alloc(8192, 7), Buffer.alloc(0));
    expect(out.readUInt16BE(0)).to.equal(8192);
    expect(out.length).to.equal(2 + 8192 + 1);
    expect(() => buildHsmAad(Buffer.alloc(65536), Buffer.alloc(0))).to.throw(RangeError);
  });

  it('length-prefixes the longest AAD and metadata the prefixes can hold', () => {
    const out = buildHsmAad(Buffer.alloc(0xffff, 7), Buffer.alloc(0xff, 8));
    expect(out.readUInt16BE(0)).to.equal(0xffff);
    expect(out.readUInt8(2 + 0xffff)).to.equal(0xff);
    expect(out.length).to.equal(2 + 0xffff + 1 + 0xff);
    expect(() => buildHsmAad(Buffer.alloc(0), Buffer.alloc(0x100))).to.throw(RangeError);
  });
});
