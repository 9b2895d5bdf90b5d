/**
 * The Cedar schema every policy file is validated against (strict mode), and the entities the proxy
 * builds from requestMetadata. Names are in the Xks namespace: Xks::Principal, Xks::Action::"Encrypt".
 */
import { AUTHORIZED_OPERATIONS } from '../api/operations/registry';

export const CEDAR_NAMESPACE = 'Xks';

export const CEDAR_SCHEMA = `namespace ${CEDAR_NAMESPACE} {
  // The AWS account of a principal ARN or of a KMS key ARN.
  entity Account;
  // awsPrincipalArn; a member of its Account when the ARN carries one.
  entity Principal in [Account] {
    arn: String,
    accountId?: String,
  };
  // A key store of this proxy, by its configured name.
  entity KeyStore;
  // An externalKeyId of a key store; also a member of the kmsKeyArn's Account when KMS sent one.
  entity Key in [KeyStore, Account] {
    externalKeyId: String,
    keyStore: String,
    kmsKeyArn?: String,
    kmsKeyAccountId?: String,
    kmsKeyRegion?: String,
  };
  type RequestContext = {
    kmsOperation: String,
    kmsRequestId?: String,
    kmsViaService?: String,
    awsSourceVpc?: String,
    awsSourceVpce?: String,
    // The region of the SigV4 credential scope (the KMS region that called).
    region: String,
    accessKeyId: String,
    // With mutual TLS: the client certificate name that matched allowedSubjectNames.
    tlsClientName?: String,
  };
  action ${AUTHORIZED_OPERATIONS.join(', ')} appliesTo {
    principal: [Principal],
    resource: [Key],
    context: RequestContext,
  };
}
`;
