/**
 * The labels of every AES-256 key on the token (the KMS API's ListKeys, the rotation scheduler):
 * a token search, one C_GetAttributeValue per key, so it runs where a request's job does (a
 * PKCS#11 thread), not on the event loop; a token with many keys makes it long.
 */
import { findAes256Keys } from './key-handles';
import type { Pkcs11Module, SessionHandle } from './pkcs11/module';

export interface LabelsJob {
  op: 'labels';
  session: SessionHandle;
}

/** Sorted and unique; keys without a label are left out. */
export function runLabelsJob(module: Pkcs11Module, job: LabelsJob): string[] {
  const labels = findAes256Keys(module, job.session).map(({ info }) => info.label);
  return [...new Set(labels.filter((label) => label.length > 0))].sort();
}
