/**
 * The KMS API operation registry. Adding an operation is one entry here and one file (its
 * X-Amz-Target name, kms: actions, input checks and handler): the handler's dispatch follows from
 * it. A new kms: action is also one line of src/authz/kms-actions.ts (config reads that list).
 */
import { decryptOperation } from './decrypt';
import { describeKeyOperation } from './describe-key';
import { encryptOperation } from './encrypt';
import { generateDataKeyOperation } from './generate-data-key';
import { generateDataKeyWithoutPlaintextOperation } from './generate-data-key-without-plaintext';
import { generateRandomOperation } from './generate-random';
import { listAliasesOperation } from './list-aliases';
import { listKeysOperation } from './list-keys';
import type { KmsOperationEntry } from './operation';
import { reEncryptOperation } from './re-encrypt';

export const KMS_OPERATION_LIST: readonly KmsOperationEntry[] = [
  encryptOperation,
  decryptOperation,
  reEncryptOperation,
  generateDataKeyOperation,
  generateDataKeyWithoutPlaintextOperation,
  generateRandomOperation,
  describeKeyOperation,
  listKeysOperation,
  listAliasesOperation,
];

/** By X-Amz-Target suffix. A Map, not an object: a suffix like toString or constructor must not find Object.prototype's members. */
export const KMS_OPERATIONS: ReadonlyMap<string, KmsOperationEntry> = new Map(KMS_OPERATION_LIST.map((op) => [op.name, op]));
