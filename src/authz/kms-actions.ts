/**
 * The KMS API's kms: actions and the Cedar resource each applies to. Config reads this list when it
 * loads (credential actions[], the Kms Cedar schema), before the KMS API's operation registry
 * (src/kms-api/operations/registry.ts) is in reach: config is below kms-api in the folder layering.
 * Registry entries name their actions from here, and a unit test checks each is claimed.
 */
export const KMS_ACTION_RESOURCES = {
  'kms:Encrypt': 'Key',
  'kms:Decrypt': 'Key',
  'kms:ReEncryptFrom': 'Key',
  'kms:ReEncryptTo': 'Key',
  'kms:GenerateDataKey': 'Key',
  'kms:GenerateDataKeyWithoutPlaintext': 'Key',
  'kms:GenerateRandom': 'Service',
  'kms:DescribeKey': 'Key',
  'kms:ListKeys': 'Service',
  'kms:ListAliases': 'Service',
} as const;

export type KmsAction = keyof typeof KMS_ACTION_RESOURCES;
export type KmsCedarResource = (typeof KMS_ACTION_RESOURCES)[KmsAction];

export const KMS_API_ACTIONS = Object.keys(KMS_ACTION_RESOURCES) as KmsAction[];

/** Cedar action names (without "kms:") on one resource type, in list order. */
export function kmsCedarActionsOn(resource: KmsCedarResource): string[] {
  return KMS_API_ACTIONS.filter((a) => KMS_ACTION_RESOURCES[a] === resource).map((a) => a.slice('kms:'.length));
}
