// Step 2: the credential scope, <AKID>/<yyyymmdd>/<region>/<service>/aws4_request.
import { setBounded } from '../../common/bounded-map';
import type { SigV4Failure, StepResult } from './verifier';

export const SCOPE_TERMINATOR = 'aws4_request';

export interface CredentialScope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
}

// Spec AKIDs are A-Z2-7; stay a little wider so config-layer choices still reach the lookup.
const ACCESS_KEY_ID = /^[A-Za-z0-9._+=@-]{1,128}$/;
const REGION = /^[a-z0-9-]{1,64}$/;

/** Accepted parses by Credential value (one per access key and day, in practice); bounded like the header's. */
const PARSED_SCOPES_MAX = 64;
const parsedScopes = new Map<string, StepResult<CredentialScope>>();

export function parseCredential(credential: string): StepResult<CredentialScope> {
  const known = parsedScopes.get(credential);
  if (known !== undefined) return known;
  const parts = credential.split('/');
  if (parts.length !== 5) {
    return { ok: false, reason: 'MalformedAuthorization', detail: 'Credential does not have 5 slash-separated parts' };
  }
  const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  if (!ACCESS_KEY_ID.test(accessKeyId)) {
    return { ok: false, reason: 'MalformedAuthorization', detail: 'Credential access key ID is empty or has invalid characters' };
  }
  const parsed = Object.freeze({ ok: true as const, value: Object.freeze({ accessKeyId, date, region, service, terminator }) });
  setBounded(parsedScopes, credential, parsed, PARSED_SCOPES_MAX);
  return parsed;
}

/** The scope string as it appears in the string-to-sign (everything after the AKID). */
export function scopeString(scope: CredentialScope): string {
  return `${scope.date}/${scope.region}/${scope.service}/${scope.terminator}`;
}

export function checkScope(scope: CredentialScope, amzDate: string, expectedService: string): SigV4Failure | undefined {
  const fail = (detail: string): SigV4Failure => ({
    ok: false,
    reason: 'ScopeMismatch',
    detail,
    accessKeyId: scope.accessKeyId,
  });
  // The derived key is bound to the scope date: it must be the day of x-amz-date.
  if (scope.date !== amzDate.slice(0, 8)) return fail('credential scope date is not the date of x-amz-date');
  if (!REGION.test(scope.region)) return fail('credential scope region is empty or has invalid characters');
  if (scope.service !== expectedService) return fail(`credential scope service is not ${expectedService}`);
  if (scope.terminator !== SCOPE_TERMINATOR) return fail('credential scope does not end with aws4_request');
  return undefined;
}
