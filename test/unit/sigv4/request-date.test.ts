import { expect } from 'chai';
import { checkClockSkew, parseAmzDate } from '../../../src/auth/sigv4/request-date';

describe('sigv4 request-date', () => {
  it('parses YYYYMMDDTHHMMSSZ as UTC', () => {
    expect(parseAmzDate('20211009T235959Z')).to.deep.equal({ ok: true, value: Date.UTC(2021, 9, 9, 23, 59, 59) });
    expect(parseAmzDate('20240229T000000Z')).to.deep.equal({ ok: true, value: Date.UTC(2024, 1, 29) });
  });

  for (const bad of ['', '20211009T235959', '2021-10-09T23:59:59Z', '20211009t235959z', '20211009T235959.000Z', '20211309T000000Z', '20230229T000000Z', '20211009T240000Z', '20211009T236000Z', 'Sat, 09 Oct 2021 23:59:59 GMT', ' 20211009T235959Z', '20211009T235959Z,20211009T235959Z']) {
    it(`rejects ${JSON.stringify(bad)} as MalformedDate`, () => {
      const r = parseAmzDate(bad);
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.reason).to.equal('MalformedDate');
    });
  }

  it('accepts skew up to and including the limit in both directions', () => {
    const now = Date.UTC(2024, 0, 1);
    for (const d of [0, 1000, -1000, 240_000, -240_000, 300_000, -300_000]) {
      expect(checkClockSkew(now + d, now, 300_000), String(d)).to.equal(undefined);
    }
  });

  it('rejects skew beyond the limit as RequestExpired', () => {
    const now = Date.UTC(2024, 0, 1);
    for (const d of [301_000, -301_000, 360_000, -360_000]) {
      expect(checkClockSkew(now + d, now, 300_000), String(d)).to.include({ ok: false, reason: 'RequestExpired' });
    }
  });

  it('says how far and in which direction the clock is off, and the limit (the log an SRE checks NTP from)', () => {
    const now = Date.UTC(2024, 0, 1);
    expect(checkClockSkew(now - 361_000, now, 300_000)).to.deep.equal({
      ok: false, reason: 'RequestExpired', detail: 'x-amz-date is 361 s in the past; the limit is 300 s', allowedSkewSeconds: 300,
    });
    expect(checkClockSkew(now + 420_000, now, 60_000)).to.deep.equal({
      ok: false, reason: 'RequestExpired', detail: 'x-amz-date is 420 s in the future; the limit is 60 s', allowedSkewSeconds: 60,
    });
  });
});
