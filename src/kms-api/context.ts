import type { RuntimeKeyStore } from '../config/runtime';
import type { OperationServices } from '../api/operations/context';
import type { Deadline } from '../hsm';
import type { KmsApiCredential, KmsApiRuntime } from '../config/kms-api';

/** What a KMS API operation sees: the shared HSM services, the served key store, the caller. */
export interface KmsContext {
  services: OperationServices;
  config: KmsApiRuntime;
  store: RuntimeKeyStore;
  credential: KmsApiCredential;
  /** The request's budget (kmsApi.requestDeadlineMs, else limits.requestDeadlineMs): HSM waits and calls end in DependencyTimeoutException. */
  deadline: Deadline;
  /** The verified SigV4 caller (a configured access key) and its scope region. */
  accessKeyId: string;
  region: string;
  /** Log/audit fields of this request; operations add externalKeyId. Written, never read back. */
  fields: Record<string, string | number | undefined>;
}
