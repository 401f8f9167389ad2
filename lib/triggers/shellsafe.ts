// Choria's `shellsafe` validator refuses `` ` ``, `$`, `;`, `|`, `&&`, `>` and `<`. Line breaks end a
// shell command as surely as `;` does and a NUL cuts a C string short, so they are refused here too.
const UNSAFE = ["`", "$", ";", "|", "&&", ">", "<", "\n", "\r", "\0"] as const;

/** The first fragment that makes the value unsafe to hand to a shell, or undefined. */
export function shellUnsafeFragment(value: string): string | undefined {
  return UNSAFE.find((fragment) => value.includes(fragment));
}

export function isShellSafe(value: string): boolean {
  return shellUnsafeFragment(value) === undefined;
}
