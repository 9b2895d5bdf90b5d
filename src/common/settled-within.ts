/**
 * Waits for `work` to settle, but at most `ms`: true if it settled in time. For startup and
 * shutdown, which must not hang on a PKCS#11 call that never returns (the work itself goes on).
 */
export function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const settled = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    work.then(settled, settled);
  });
}
