// How `choria-edge req` shows a reply's data on one table line.
import { describe, expect, it } from "vitest";
import { dataCell, renderTable } from "../../../cli/req-run.ts";

const inventory = {
  agents: ["rpcutil", "discovery", "demo"],
  facts: { role: "web", os: { family: "Debian", release: "12" }, disks: [{ size: 10 }] },
  classes: ["web"],
  main_collective: "mcollective",
  version: "choria-edge-node 0.1.0",
  load: 0.25,
  note: null,
};

describe("req data cell", () => {
  it("shows scalars first, then the size of each list and object", () => {
    expect(dataCell(inventory)).toBe(
      'main_collective=mcollective version="choria-edge-node 0.1.0" load=0.25 note=null agents=[3] facts={3} classes=[1]',
    );
    expect(dataCell({ pong: 1796427370 })).toBe("pong=1796427370");
    expect(dataCell({})).toBe("");
    expect(dataCell(null)).toBe("");
    expect(dataCell(undefined)).toBe("");
    expect(dataCell("plain text")).toBe('"plain text"');
  });

  it("truncates a long value and a long line", () => {
    const long = dataCell({ message: "x".repeat(100) });
    expect(long).toBe(`message=${"x".repeat(39)}…`);
    const many = dataCell(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`field${i}`, i])));
    expect(many).toHaveLength(120);
    expect(many.endsWith("…")).toBe(true);
  });

  it("--fields picks fields and paths into objects and lists, as compact JSON, each value truncated", () => {
    expect(dataCell({ message: "y".repeat(100) }, ["message"])).toBe(`message=${"y".repeat(79)}…`);
    expect(dataCell(inventory, ["facts.role", "facts.os", "facts.disks.0.size", "agents", "missing"])).toBe(
      'facts.role=web facts.os={"family":"Debian","release":"12"} facts.disks.0.size=10 agents=["rpcutil","discovery","demo"] missing=-',
    );
  });

  it("puts the data last in the table, after the timing", () => {
    const table = renderTable(
      [
        { identity: "b", statuscode: 0, statusmsg: "OK", data: { pong: 2 }, ms: 3.4 },
        { identity: "a", statuscode: 1, statusmsg: "boom", data: {}, ms: 12 },
      ],
      { summary: { ok: 1, failed: 1 }, no_reply: ["c"] },
      undefined,
    );
    expect(table.split("\n").slice(0, 4)).toEqual([
      "identity  status    statusmsg  ms  data",
      "a         Aborted   boom       12",
      "b         OK        OK          3  pong=2",
      "c         no reply",
    ]);
  });
});
