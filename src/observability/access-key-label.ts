/**
 * The access_key_id label of metrics (admin.accessKeyIdLabel). An access key ID is not a secret, but
 * it is half of a credential and names a client: operators whose /metrics is read more widely than
 * the admin port may hash it (stable, so series survive restarts and match across workers) or drop it.
 */
import { createHash } from 'node:crypto';

export const ACCESS_KEY_ID_LABEL_MODES = ['keep', 'hash', 'drop'] as const;
export type AccessKeyIdLabelMode = (typeof ACCESS_KEY_ID_LABEL_MODES)[number];

/** 16 hex digits of SHA-256: `printf %s <id> | sha256sum | cut -c1-16` finds a credential's series. */
export function hashedAccessKeyId(accessKeyId: string): string {
  return createHash('sha256').update(accessKeyId, 'utf8').digest('hex').slice(0, 16);
}

/** The label to merge into a metric's labels: absent in drop mode, so the series has no such label. */
export function accessKeyIdLabel(mode: AccessKeyIdLabelMode, accessKeyId: string): { access_key_id?: string } {
  if (mode === 'drop') return {};
  return { access_key_id: mode === 'hash' ? hashedAccessKeyId(accessKeyId) : accessKeyId };
}
