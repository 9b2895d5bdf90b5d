/** The KMS API's dispatch, credential actions and Cedar actions follow its operation registry. */
import { expect } from 'chai';
import { KMS_ACTION_RESOURCES, KMS_API_ACTIONS } from '../../../src/authz/kms-actions';
import { KMS_CEDAR_SCHEMA_TEXT } from '../../../src/authz/kms-cedar-schema';
import { KMS_OPERATION_LIST, KMS_OPERATIONS } from '../../../src/kms-api/operations/registry';

const cedarActionLines = (): string[][] =>
  [...KMS_CEDAR_SCHEMA_TEXT.matchAll(/action ([^{]*) appliesTo/g)].map((m) => m[1]!.split(',').map((a) => a.trim()));

describe('KMS API operation registry', () => {
  it('lists the nine TrentService operations, each once, and dispatches by name', () => {
    const names = KMS_OPERATION_LIST.map((op) => op.name);
    expect(names).to.deep.equal([
      'Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateRandom', 'DescribeKey', 'ListKeys', 'ListAliases',
    ]);
    expect(KMS_OPERATIONS.size).to.equal(names.length);
    for (const op of KMS_OPERATION_LIST) expect(KMS_OPERATIONS.get(op.name)).to.equal(op);
  });

  it('claims every kms: action a credential may be given, each by one operation', () => {
    const claimed = KMS_OPERATION_LIST.flatMap((op) => op.actions);
    expect([...claimed].sort()).to.deep.equal([...KMS_API_ACTIONS].sort());
  });

  it('declares each action in the Kms Cedar schema on its resource type', () => {
    const [onKey, onService] = cedarActionLines();
    expect(onKey).to.deep.equal(['Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'DescribeKey']);
    expect(onService).to.deep.equal(['GenerateRandom', 'ListKeys', 'ListAliases']);
    for (const action of KMS_API_ACTIONS) {
      const line = KMS_ACTION_RESOURCES[action] === 'Key' ? onKey : onService;
      expect(line, action).to.include(action.slice('kms:'.length));
    }
  });
});
