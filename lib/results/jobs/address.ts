/*
 * Where a URL callback may connect, judged on the IP address it resolved to (not on the name, which a
 * caller or a DNS answer can make say anything). A callback lets whoever names it make the collector send
 * a POST and read the outcome back, so by default only public addresses are reached: never loopback,
 * private, link-local, unique-local or carrier-grade NAT space, nor the cloud metadata services. The
 * operator may open the private classes (`--allow-private-callbacks`, for the local stack and for
 * receivers inside their own network); link-local, the metadata addresses and the special-purpose ranges
 * stay closed even then, as no webhook receiver lives there. Pure: no I/O, so it is tested by itself.
 */

export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "unique_local"
  | "cgnat"
  | "link_local"
  | "metadata"
  | "unspecified"
  | "multicast"
  | "reserved"
  | "invalid";

/** The classes `--allow-private-callbacks` opens. */
const PRIVATE_CLASSES: ReadonlySet<AddressClass> = new Set(["loopback", "private", "unique_local", "cgnat"]);

/** Whether a callback may connect to this address. */
export function addressAllowed(address: string, allowPrivate: boolean): boolean {
  const kind = classifyAddress(address);
  return kind === "public" || (allowPrivate && PRIVATE_CLASSES.has(kind));
}

// Instance metadata and credential services: AWS (IMDS, ECS task, EKS pod identity; also over IPv6),
// GCP and Azure (169.254.169.254 too), Alibaba Cloud, Oracle Cloud's older address.
const METADATA_V4 = new Set([
  "169.254.169.254",
  "169.254.170.2",
  "169.254.170.23",
  "100.100.100.200",
  "192.0.0.192",
]);
const METADATA_V6 = new Set(["fd00:ec2:0:0:0:0:0:254", "fd00:ec2:0:0:0:0:0:23"]);

/** The class of an IPv4 or IPv6 address in text form (a `%zone` suffix is ignored); `invalid` if it is none. */
export function classifyAddress(address: string): AddressClass {
  const v4 = parseIpv4(address);
  if (v4 !== undefined) return classifyV4(v4);
  const v6 = parseIpv6(address.replace(/%.*$/, ""));
  return v6 === undefined ? "invalid" : classifyV6(v6);
}

function classifyV4(b: readonly number[]): AddressClass {
  const [a = 0, second = 0, third = 0] = b;
  if (METADATA_V4.has(b.join("."))) return "metadata";
  if (a === 0) return "unspecified";
  if (a === 127) return "loopback";
  if (a === 10 || (a === 172 && second >= 16 && second <= 31) || (a === 192 && second === 168))
    return "private";
  if (a === 169 && second === 254) return "link_local";
  if (a === 100 && second >= 64 && second <= 127) return "cgnat";
  if (a >= 224 && a <= 239) return "multicast";
  if (a >= 240) return "reserved";
  // IETF protocol assignments, documentation, benchmarking.
  if (a === 192 && second === 0 && (third === 0 || third === 2)) return "reserved";
  if (a === 198 && (second === 18 || second === 19)) return "reserved";
  if ((a === 198 && second === 51 && third === 100) || (a === 203 && second === 0 && third === 113))
    return "reserved";
  return "public";
}

/** `groups` are the eight 16-bit groups. */
function classifyV6(groups: readonly number[]): AddressClass {
  const g = (i: number) => groups[i] ?? 0;
  const embeddedV4 = (from: number) => [g(from) >> 8, g(from) & 0xff, g(from + 1) >> 8, g(from + 1) & 0xff];
  if (METADATA_V6.has(groups.map((n) => n.toString(16)).join(":"))) return "metadata";
  const firstSixZero = [0, 1, 2, 3, 4, 5].every((i) => g(i) === 0);
  if (firstSixZero && g(6) === 0 && g(7) === 0) return "unspecified";
  if (firstSixZero && g(6) === 0 && g(7) === 1) return "loopback";
  // IPv4-compatible (::a.b.c.d, deprecated) and IPv4-mapped (::ffff:a.b.c.d): the IPv4 address decides.
  if (firstSixZero) return classifyV4(embeddedV4(6));
  if ([0, 1, 2, 3].every((i) => g(i) === 0) && g(4) === 0 && g(5) === 0xffff)
    return classifyV4(embeddedV4(6));
  // NAT64: the well-known prefix carries a public IPv4 address in its last 32 bits; the local-use one is ours.
  if (g(0) === 0x64 && g(1) === 0xff9b && [2, 3, 4, 5].every((i) => g(i) === 0))
    return classifyV4(embeddedV4(6));
  if (g(0) === 0x64 && g(1) === 0xff9b && g(2) === 1) return "private";
  // 6to4 carries the IPv4 address of its relay in bits 16-47.
  if (g(0) === 0x2002) return classifyV4(embeddedV4(1));
  if ((g(0) & 0xffc0) === 0xfe80) return "link_local";
  if ((g(0) & 0xffc0) === 0xfec0) return "private"; // site-local, deprecated
  if ((g(0) & 0xfe00) === 0xfc00) return "unique_local";
  if ((g(0) & 0xff00) === 0xff00) return "multicast";
  // IETF protocol assignments (Teredo among them), documentation, discard-only.
  if (g(0) === 0x2001 && g(1) < 0x200) return "reserved";
  if (g(0) === 0x2001 && g(1) === 0xdb8) return "reserved";
  if (g(0) === 0x100 && g(1) === 0 && g(2) === 0 && g(3) === 0) return "reserved";
  return "public";
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes.push(value);
  }
  return bytes;
}

function parseIpv6(text: string): number[] | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const pieces = half.split(":");
    for (const [index, piece] of pieces.entries()) {
      if (piece.includes(".")) {
        // A dotted IPv4 tail is the last two groups.
        const v4 = index === pieces.length - 1 ? parseIpv4(piece) : undefined;
        if (v4 === undefined) return undefined;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(piece)) return undefined;
        out.push(Number.parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
