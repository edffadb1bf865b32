/**
 * Preloaded (`node --import`) into every server the bench starts: exits the process when the harness that spawned
 * it goes away (its stdin pipe reaches EOF), so a killed harness leaves no orphan server behind. The stdin handle is
 * unref'd, so it never keeps a process alive by itself, and costs nothing while idle.
 */
if (!process.stdin.isTTY) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  (process.stdin as unknown as { unref?: () => void }).unref?.();
}
