// Property-style: random bodies, paths, queries and header values all verify; any single flipped body byte fails.
// The seed is random per run and printed on failure; set SIGV4_PROPERTY_SEED to replay one.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { HOST, lookup, rfc3986, signWithSmithy, verifier } from './helpers';

class SeededRandom {
  private counter = 0;
  private pool = Buffer.alloc(0);
  constructor(private readonly seed: string) {}

  bytes(n: number): Buffer {
    while (this.pool.length < n) {
      const block = createHash('sha256').update(`${this.seed}:${this.counter++}`).digest();
      this.pool = Buffer.concat([this.pool, block]);
    }
    const out = this.pool.subarray(0, n);
    this.pool = this.pool.subarray(n);
    return Buffer.from(out);
  }

  int(maxExclusive: number): number {
    return this.bytes(4).readUInt32BE(0) % maxExclusive;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  string(alphabet: string, min: number, max: number): string {
    const n = min + this.int(max - min + 1);
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

// RFC 3986 pchar minus '%', which is added as whole escapes.
const SEGMENT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@";
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

function randomSegment(r: SeededRandom): string {
  for (;;) {
    let s = '';
    const parts = 1 + r.int(4);
    for (let i = 0; i < parts; i++) {
      s += r.int(4) === 0 ? '%' + r.bytes(1).toString('hex').toUpperCase() : r.string(SEGMENT_CHARS, 1, 6);
    }
    if (s !== '.' && s !== '..') return s;
  }
}

describe('sigv4 property: random requests', function () {
  this.timeout(60_000);
  const seed = process.env['SIGV4_PROPERTY_SEED'] ?? randomBytes(8).toString('hex');
  const ITERATIONS = 200;

  it(`${ITERATIONS} random requests verify and every single-byte body flip fails (seed ${seed})`, async () => {
    const r = new SeededRandom(seed);
    const v = verifier();
    let flips = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const body = r.bytes(1 + r.int(256));
      const path = '/' + Array.from({ length: 1 + r.int(6) }, () => randomSegment(r)).join('/');
      const query: Record<string, string> = {};
      if (r.int(4) === 0) {
        for (let q = r.int(3); q >= 0; q--) query[r.string(SEGMENT_CHARS, 1, 8)] = r.string(PRINTABLE, 0, 12);
      }
      const applyChecksum = r.int(2) === 0;
      const region = r.pick(['us-east-1', 'eu-west-1', 'ap-southeast-2', 'us-gov-west-1']);
      const headers = { host: HOST, 'content-type': 'application/json', 'x-test': r.string(PRINTABLE, 1, 40).trim() || 'x' };

      const req = await signWithSmithy({ body, path, query, region, applyChecksum, headers });
      const where = `seed ${seed}, iteration ${i}, url ${JSON.stringify(req.url)}`;
      const ok = v.verify(req, lookup);
      expect(ok, `${where}: ${JSON.stringify(ok)}`).to.deep.include({ ok: true, region });
      expect(Object.keys(query).map(rfc3986).every((k) => req.url.includes(k)), where).to.equal(true);

      const expectedReason = applyChecksum ? 'PayloadHashMismatch' : 'SignatureMismatch';
      for (let b = 0; b < body.length; b++) {
        const tampered = Buffer.from(body);
        tampered[b] ^= 1 + r.int(255);
        const res = v.verify({ ...req, body: tampered }, lookup);
        expect(res, `${where}, byte ${b}`).to.include({ ok: false, reason: expectedReason });
        flips++;
      }
    }
    expect(flips).to.be.greaterThan(ITERATIONS);
  });
});
