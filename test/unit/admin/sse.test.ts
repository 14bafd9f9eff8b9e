/** The event-stream format, both ends: what the server writes, the reader (CLI and dashboard) reads back. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SseParser, formatComment, formatEvent, formatRetry } from "../../../src/admin/sse.js";

describe("SseParser", () => {
  it.each([
    { name: "one event", text: "id: 3\nevent: health\ndata: {\"a\":1}\n\n", want: [{ event: "health", data: '{"a":1}', id: "3" }] },
    { name: "no event field is 'message'", text: "data: x\n\n", want: [{ event: "message", data: "x", id: undefined }] },
    { name: "data lines join with \\n", text: "data: a\ndata: b\n\n", want: [{ event: "message", data: "a\nb", id: undefined }] },
    { name: "CRLF and CR line ends", text: "event: e\r\ndata: 1\r\rdata: 2\r\n\r\n", want: [{ event: "e", data: "1", id: undefined }, { event: "message", data: "2", id: undefined }] },
    { name: "comments are skipped", text: ": heartbeat\n\n: x\ndata: y\n\n", want: [{ event: "message", data: "y", id: undefined }] },
    { name: "no space after the colon", text: "data:z\n\n", want: [{ event: "message", data: "z", id: undefined }] },
    { name: "an event without data is not dispatched", text: "event: x\n\n", want: [] },
    { name: "an unfinished event waits", text: "data: x\n", want: [] },
    { name: "a leading BOM is dropped", text: "\ufeffdata: x\n\n", want: [{ event: "message", data: "x", id: undefined }] },
    { name: "unknown fields are ignored", text: "foo: bar\ndata: x\n\n", want: [{ event: "message", data: "x", id: undefined }] },
  ])("$name", ({ text, want }) => {
    expect(new SseParser().push(text)).toEqual(want);
  });

  it("keeps the last id (to resume from) and the retry value", () => {
    const p = new SseParser();
    p.push("retry: 1500\n\nid: 7\ndata: a\n\ndata: b\n\n");
    expect(p.lastEventId).toBe("7");
    expect(p.retry).toBe(1500);
  });

  it("reads the same events however the stream is cut into chunks (CRLF split included)", () => {
    const events = fc.array(
      fc.record({
        id: fc.option(fc.nat(), { nil: undefined }),
        event: fc.constantFrom("health", "counters", "member_added"),
        data: fc.string({ maxLength: 40 }),
      }),
      { maxLength: 6 },
    );
    fc.assert(
      fc.property(events, fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (evs, cuts, crlf) => {
        let text = formatRetry(1000) + formatComment("hi") + evs.map((e) => formatEvent(e)).join("");
        if (crlf) text = text.replace(/\n/g, "\r\n");
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const p = new SseParser();
        const got = [];
        let at = 0;
        for (const c of [...points, text.length]) {
          got.push(...p.push(text.slice(at, c)));
          at = c;
        }
        // data with line breaks comes back with \n (the format's one line end)
        expect(got).toEqual(evs.map((e) => ({ event: e.event, data: e.data.replace(/\r\n|\r/g, "\n"), id: e.id === undefined ? undefined : String(e.id) })));
      }),
    );
  });
});

describe("formatEvent", () => {
  it("writes id, event and one data line per line; fields cannot break out of their line", () => {
    expect(formatEvent({ id: 4, event: "health", data: "a\nb" })).toBe("id: 4\nevent: health\ndata: a\ndata: b\n\n");
    expect(formatEvent({ event: "x\ndata: injected", data: "1" })).toBe("event: x data: injected\ndata: 1\n\n");
    expect(formatComment("a\nb")).toBe(": a b\n\n");
  });
});
