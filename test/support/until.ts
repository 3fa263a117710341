/**
 * Polls `pred` until it holds, for state only the database shows (no event to wait on); throws after
 * `timeoutMs`.
 */
export async function until(pred: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
