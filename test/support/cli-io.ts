// What a CLI command writes, kept for the test to read: its io argument, and the text of each stream.
export function captureIo(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t), isTTY },
    },
    stdout: () => out.join(""),
    stderr: () => err.join(""),
  };
}
