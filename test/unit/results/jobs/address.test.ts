import { describe, expect, it } from "vitest";
import { addressAllowed, classifyAddress } from "../../../../lib/results/jobs/address.ts";

describe("callback address classes", () => {
  it("names the classes a callback must not reach", () => {
    const cases: [string, string][] = [
      ["93.184.216.34", "public"],
      ["8.8.8.8", "public"],
      ["127.0.0.1", "loopback"],
      ["127.255.3.4", "loopback"],
      ["10.1.2.3", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["172.32.0.1", "public"],
      ["192.168.1.1", "private"],
      ["169.254.1.1", "link_local"],
      ["169.254.169.254", "metadata"],
      ["169.254.170.2", "metadata"],
      ["100.64.0.1", "cgnat"],
      ["100.127.255.255", "cgnat"],
      ["100.128.0.1", "public"],
      ["100.100.100.200", "metadata"],
      ["0.0.0.0", "unspecified"],
      ["0.1.2.3", "unspecified"],
      ["224.0.0.1", "multicast"],
      ["255.255.255.255", "reserved"],
      ["240.0.0.1", "reserved"],
      ["198.18.0.1", "reserved"],
      ["192.0.0.192", "metadata"],
      ["::1", "loopback"],
      ["::", "unspecified"],
      ["fe80::1", "link_local"],
      ["fe80::1%eth0", "link_local"],
      ["febf::1", "link_local"],
      ["fc00::1", "unique_local"],
      ["fd12:3456::1", "unique_local"],
      ["fd00:ec2::254", "metadata"],
      ["ff02::1", "multicast"],
      ["2606:2800:220:1:248:1893:25c8:1946", "public"],
      ["::ffff:127.0.0.1", "loopback"],
      ["::ffff:7f00:1", "loopback"],
      ["::ffff:169.254.169.254", "metadata"],
      ["::ffff:93.184.216.34", "public"],
      ["64:ff9b::a9fe:a9fe", "metadata"],
      ["64:ff9b::10.0.0.1", "private"],
      ["2002:7f00:1::", "loopback"],
      ["2002:5db8:d822::1", "public"],
      ["::127.0.0.1", "loopback"],
      ["2001:db8::1", "reserved"],
      ["not an address", "invalid"],
      ["1.2.3", "invalid"],
      ["1::2::3", "invalid"],
    ];
    for (const [address, kind] of cases) expect(classifyAddress(address), address).toBe(kind);
  });

  it("allows public addresses; private ones only when the operator says so; metadata and link-local never", () => {
    expect(addressAllowed("93.184.216.34", false)).toBe(true);
    for (const address of ["127.0.0.1", "10.0.0.1", "fd00::1", "100.64.1.1", "::1"]) {
      expect(addressAllowed(address, false), address).toBe(false);
      expect(addressAllowed(address, true), address).toBe(true);
    }
    for (const address of [
      "169.254.169.254",
      "fe80::1",
      "169.254.3.3",
      "0.0.0.0",
      "224.0.0.1",
      "fd00:ec2::254",
    ])
      expect(addressAllowed(address, true), address).toBe(false);
  });
});
