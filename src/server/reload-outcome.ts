// Issue #4's RunningProxy.reload() reports a rejected config as a value; callers here accept either.
/** A reload outcome reported as a value rather than thrown: { ok: false, errors: [...] }. */
export function reloadRejection(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || (result as { ok?: unknown }).ok !== false) return undefined;
  const errors = (result as { errors?: unknown }).errors;
  return Array.isArray(errors) && errors.length > 0 ? errors.map(String).join('; ') : 'the new configuration was rejected';
}
