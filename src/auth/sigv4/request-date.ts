// Step 3: x-amz-date, YYYYMMDD'T'HHMMSS'Z' (UTC), and the replay window around it.
import type { SigV4Failure, StepResult } from './verifier';

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The last value parsed: KMS's requests within one second share their x-amz-date. */
let last: { value: string; result: StepResult<number> } | undefined;

/** Returns the instant in ms since the epoch. */
export function parseAmzDate(value: string): StepResult<number> {
  if (last !== undefined && last.value === value) return last.result;
  const result = parseAmzDateOnce(value);
  last = { value, result };
  return result;
}

function parseAmzDateOnce(value: string): StepResult<number> {
  const m = AMZ_DATE.exec(value);
  const fail: SigV4Failure = { ok: false, reason: 'MalformedDate', detail: "x-amz-date is not of the form YYYYMMDD'T'HHMMSS'Z'" };
  if (!m) return fail;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  // Date.UTC rolls over (month 13, Feb 30, 24:00); a round trip rejects those.
  const back = new Date(ms);
  if (
    back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d ||
    back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s
  ) {
    return fail;
  }
  return { ok: true, value: ms };
}

export function checkClockSkew(requestMs: number, nowMs: number, maxSkewMs: number): (SigV4Failure & { allowedSkewSeconds: number }) | undefined {
  const skew = requestMs - nowMs;
  if (Math.abs(skew) <= maxSkewMs) return undefined;
  const seconds = Math.round(Math.abs(skew) / 1000);
  const when = skew < 0 ? 'in the past' : 'in the future';
  return {
    ok: false,
    reason: 'RequestExpired',
    detail: `x-amz-date is ${seconds} s ${when}; the limit is ${Math.round(maxSkewMs / 1000)} s`,
    allowedSkewSeconds: Math.round(maxSkewMs / 1000),
  };
}
